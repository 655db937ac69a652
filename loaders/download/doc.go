// Package download fetches what the experiments need from the network: CLIP weights
// from the Hugging Face hub (FetchModel), the fast.ai Imagenette archives
// (FetchImagenette), and OpenAI's per-dataset prompt templates (FetchTemplates) and
// ImageNet ensemble (FetchImageNetTemplates).
//
// Every file goes through File, which writes to DEST.partial, resumes an interrupted
// transfer with an HTTP Range request (guarded by If-Range), retries transient failures
// (dropped connections, stalls, 5xx, 429) with exponential backoff, checks the expected
// size, SHA-256 and content (Expect.Check: JSON that parses, an intact archive holding
// train/ and val/, no HTML page) when they are known, and only then renames the file
// into place. A file at its final name is therefore always complete, and one that
// fails its content check (kept by an older version, say) is fetched again.
//
// Nothing waits forever: every wait on the network is bounded by a timeout
// (Options.Timeout, $GORGOCLIP_HTTP_TIMEOUT, DefaultTimeout 20s), which must also see
// 1 KiB of the body in each window of its length; retries stop after Retries
// attempts in a row bring no new byte, after MaxAttempts in all, or after MaxTime.
// Archives are extracted within MaxExtractRatio, MaxExtractBytes and
// MaxExtractEntries, into scratch directories that the next run removes if a killed
// one left them.
//
// Partial-file policy: a .partial file is kept when a transfer fails on the network or
// is cancelled, so that the next run resumes it; it is removed when the finished bytes
// fail the size, checksum or content check, since resuming corrupt bytes cannot help,
// and restarted when it came from another URL.
//
// When the network is unreachable (DNS failure, connection refused, no route), the
// functions fail at once with an *OfflineError that names the URL and the exact local
// path gorgoclip reads, so the file can be fetched elsewhere and copied there.
//
// Cache layout (root: $GORGOCLIP_CACHE, else os.UserCacheDir()/gorgoclip):
//
//	models/{owner}--{name}/          config.json, model.safetensors, vocab.json, merges.txt
//	datasets/imagenette2-320/        train/<wnid>/*.JPEG, val/<wnid>/*.JPEG
//	templates/prompts.md             OpenAI's CLIP data/prompts.md
//	templates/Prompt_Engineering_for_ImageNet.ipynb   OpenAI's ImageNet prompt notebook
//	templates/imagenet_templates.json                 its 80 templates and 1000 classes
//
// Environment: HF_ENDPOINT (default https://huggingface.co) and HF_TOKEN (sent as
// "Authorization: Bearer" to the hub only) are honoured as huggingface_hub does.
package download
