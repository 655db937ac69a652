# Settings of the gorgoclip Slurm jobs, read by submit.sh, which exports them to
# extract.sbatch and compare.sbatch. Edit them here or override them in the
# environment (TASKS=64 deploy/slurm/submit.sh). Every path must be on a file system
# all nodes share.
GORGOCLIP=${GORGOCLIP:-$HOME/gorgoclip/bin/gorgoclip}        # built with make build
WEIGHTS=${WEIGHTS:-/shared/gorgoclip-cache/models/openai--clip-vit-base-patch32}
DATASET=${DATASET:-imagefolder:/shared/datasets/imagenet}     # or wds:/shared/datasets/wds_imagenet1k
TRAIN_LIMIT=${TRAIN_LIMIT:-0}                                 # 0: every image
TEST_LIMIT=${TEST_LIMIT:-0}
BATCH=${BATCH:-32}
CACHE=${CACHE:-/shared/gorgoclip/features}
OUT=${OUT:-/shared/gorgoclip/results/imagenet}
TASKS=${TASKS:-32}                                            # array tasks
GORGOCLIP_CACHE=${GORGOCLIP_CACHE:-/shared/gorgoclip-cache}  # downloads and the BPE vocabulary
