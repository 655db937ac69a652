package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/gorgoclip/gorgoclip/loaders/download"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

const fetchUsage = `Usage:
  gorgoclip fetch model REPO|NAME [--revision main] [--dir DIR]
  gorgoclip fetch dataset imagenette|imagenette-320|imagenette-160 [--dir DIR] [--url URL] [--keep-archive]
  gorgoclip fetch templates [--dir DIR] [--url URL] [--notebook-url URL]
  gorgoclip fetch vocab [--dir DIR] [--url URL]

Downloads what the experiments need, resuming interrupted transfers and checking
sizes and SHA-256 digests, and prints the final path on stdout (progress on stderr).

  model      CLIP weights from the Hugging Face hub, in open_clip's layout
             (open_clip_config.json, open_clip_model.safetensors, else
             open_clip_pytorch_model.bin) or transformers' (config.json,
             model.safetensors, else pytorch_model.bin), with vocab.json and merges.txt
             when present. REPO is OWNER/NAME, or NAME a model name in OpenAI's or
             open_clip's spelling (RN50, ViT-B/32, ViT-B-32, ViT-H-14, ...), with an
             optional open_clip pretrained tag (ViT-B-32:laion2b_s34b_b79k). Default
             directory: CACHE/models/OWNER--NAME. Examples:
             gorgoclip fetch model openai/clip-vit-base-patch32
             gorgoclip fetch model RN50     (timm/resnet50_clip.openai)
  dataset    a fast.ai Imagenette archive (full size, 320 px, 160 px), extracted to
             DIR/imagenette2[-320|-160] with train/ and val/. Default DIR: CACHE/datasets.
  templates  OpenAI's per-dataset prompt templates (CLIP data/prompts.md), saved as
             DIR/prompts.md, and the 80-template ImageNet ensemble with its 1000 class
             names, extracted from OpenAI's notebook Prompt_Engineering_for_ImageNet.ipynb
             to DIR/imagenet_templates.json (prompt set imagenet80). Default DIR:
             CACHE/templates.
  vocab      OpenAI's BPE vocabulary (CLIP clip/bpe_simple_vocab_16e6.txt.gz, checked
             against its SHA-256), where tokenize, embed --texts, classify and the
             experiments find it. Default DIR: CACHE/vocab.

Environment:
  GORGOCLIP_CACHE  cache root CACHE (default: the user cache directory + /gorgoclip)
  HF_ENDPOINT      Hugging Face hub (default https://huggingface.co)
  HF_TOKEN         hub token for gated or private repositories
  GORGOCLIP_HTTP_TIMEOUT  longest wait for a connection, an answer, or 1 KiB of a
                   body (a Go duration; default 20s)

Without network, fetch uses what is already there once it checks out: a model
directory against the hub's listing recorded when it was fetched (sizes, SHA-256),
or, for files copied by hand, the four files above and a config.json that agrees
with the repository's name (patch size, resolution, width); an extracted
imagenet_templates.json without its notebook. Otherwise it fails at once and says
which URL to download and where to put it.
A server that stalls, or keeps cutting answers without new bytes, is given up after a
few retries (30 attempts and 4 hours per file at most; rerun to resume). Downloads are
checked before they are kept (JSON parses, archives are intact and hold train/ and
val/, no HTML pages), and a cached file failing the check is fetched again.
Run gorgoclip fetch KIND --help for the flags of each kind.
`

func init() {
	register(Command{Name: "fetch", Summary: "download CLIP weights, Imagenette, prompt templates or the BPE vocabulary", Run: runFetch})
}

func runFetch(env *Env, args []string) error {
	if _, err := download.TimeoutFromEnv(); err != nil {
		return err // before any flag or request, so a typo costs nothing
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, fetchUsage)
		return Usagef("fetch: want model, dataset, templates or vocab")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stderr, fetchUsage)
		return flag.ErrHelp
	case "model":
		return fetchModel(env, args[1:])
	case "dataset":
		return fetchDataset(env, args[1:])
	case "templates":
		return fetchTemplates(env, args[1:])
	case "vocab":
		return fetchVocab(env, args[1:])
	}
	fmt.Fprint(env.Stderr, fetchUsage)
	return Usagef("fetch: unknown kind %q (want model, dataset, templates or vocab)", args[0])
}

// fetchContext is cancelled by Ctrl-C, so an interrupted download keeps its partial
// file for the next run.
func fetchContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt)
}

func fetchModel(env *Env, args []string) error {
	fs := newFlags(env, "fetch model", "REPO|NAME [--revision main] [--dir DIR]\n\n"+
		"Downloads a CLIP checkpoint (open_clip or transformers layout) from the Hugging Face hub\n"+
		"(HF_ENDPOINT, HF_TOKEN honoured) into DIR (default $GORGOCLIP_CACHE or the user cache:\n"+
		"gorgoclip/models/OWNER--NAME) and prints DIR. NAME is a model name (RN50, ViT-B/32,\n"+
		"ViT-H-14, ViT-B-32:laion2b_s34b_b79k, ...). Example: gorgoclip fetch model openai/clip-vit-base-patch32")
	revision := fs.String("revision", "main", "hub branch, tag or commit")
	dir := fs.String("dir", "", "directory for the files (default: the cache)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return Usagef("fetch model: want exactly one REPO (e.g. openai/clip-vit-base-patch32), got %d arguments", len(pos))
	}
	repo, err := download.ResolveModel(pos[0])
	if err != nil {
		return Usagef("fetch model: %v", err)
	}
	if repo != pos[0] {
		fmt.Fprintf(env.Stderr, "fetch model: %s is %s\n", pos[0], repo)
	}
	ctx, stop := fetchContext()
	defer stop()
	out, err := download.FetchModel(ctx, repo, download.HubOptions{
		Options:  download.Options{Progress: env.Stderr},
		Revision: *revision,
		Dir:      *dir,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, out)
	return err
}

func fetchDataset(env *Env, args []string) error {
	fs := newFlags(env, "fetch dataset", "imagenette|imagenette-320|imagenette-160 [--dir DIR] [--url URL] [--keep-archive]\n\n"+
		"Downloads a fast.ai Imagenette archive (https://s3.amazonaws.com/fast-ai-imageclas/),\n"+
		"extracts it safely to DIR/imagenette2[-320|-160] (train/, val/) and prints that path.\n"+
		"A finished extraction is not redone.")
	dir := fs.String("dir", "", "parent directory of the dataset (default: the cache's datasets/)")
	src := fs.String("url", "", "download the archive from this URL instead (a mirror)")
	keep := fs.Bool("keep-archive", false, "keep the .tgz next to the extracted dataset")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return Usagef("fetch dataset: want exactly one dataset name (imagenette, imagenette-320, imagenette-160), got %d arguments", len(pos))
	}
	if _, err := download.ImagenetteVariant(pos[0]); err != nil {
		return Usagef("fetch dataset: unknown dataset %q (want imagenette, imagenette-320 or imagenette-160)", pos[0])
	}
	ctx, stop := fetchContext()
	defer stop()
	out, err := download.FetchImagenette(ctx, pos[0], *dir, download.SourceOptions{
		Options:     download.Options{Progress: env.Stderr},
		URL:         *src,
		KeepArchive: *keep,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, out)
	return err
}

func fetchTemplates(env *Env, args []string) error {
	fs := newFlags(env, "fetch templates", "[--dir DIR] [--url URL] [--notebook-url URL]\n\n"+
		"Downloads OpenAI's per-dataset class names and prompt templates (CLIP's\n"+
		"data/prompts.md) to DIR/prompts.md, and OpenAI's notebook\n"+
		"Prompt_Engineering_for_ImageNet.ipynb, whose imagenet_templates (80) and\n"+
		"imagenet_classes (1000) lists are extracted to DIR/imagenet_templates.json, the\n"+
		"prompt set imagenet80 when DIR is the cache's. Prints both paths, one a line.")
	dir := fs.String("dir", "", "directory for the files (default: the cache's templates/)")
	src := fs.String("url", download.DefaultTemplatesURL, "source URL of prompts.md")
	nbSrc := fs.String("notebook-url", download.DefaultImageNetNotebookURL, "source URL of the ImageNet notebook (\"\" to skip it)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return Usagef("fetch templates: unexpected arguments %q", pos)
	}
	dest := ""
	if *dir != "" {
		dest = filepath.Join(*dir, "prompts.md")
	}
	ctx, stop := fetchContext()
	defer stop()
	out, err := download.FetchTemplates(ctx, dest, download.SourceOptions{
		Options: download.Options{Progress: env.Stderr},
		URL:     *src,
	})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(env.Stdout, out); err != nil || *nbSrc == "" {
		return err
	}
	out, err = download.FetchImageNetTemplates(ctx, *dir, download.SourceOptions{
		Options: download.Options{Progress: env.Stderr},
		URL:     *nbSrc,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, out)
	return err
}

func fetchVocab(env *Env, args []string) error {
	fs := newFlags(env, "fetch vocab", "[--dir DIR] [--url URL]\n\n"+
		"Downloads OpenAI's BPE vocabulary (CLIP's clip/"+tokenizer.OpenAIVocabFile+"), checks\n"+
		"its SHA-256, and saves it as DIR/"+tokenizer.OpenAIVocabFile+", where the commands find\n"+
		"it when DIR is the cache's. Prints the path.")
	dir := fs.String("dir", "", "directory for the file (default: the cache's vocab/)")
	src := fs.String("url", download.DefaultVocabURL, "source URL (a mirror must serve the same file)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return Usagef("fetch vocab: unexpected arguments %q", pos)
	}
	ctx, stop := fetchContext()
	defer stop()
	out, err := download.FetchVocab(ctx, *dir, download.SourceOptions{
		Options: download.Options{Progress: env.Stderr},
		URL:     *src,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(env.Stdout, out)
	return err
}
