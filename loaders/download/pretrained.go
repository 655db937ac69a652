package download

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// pretrainedJSON maps model names, in open_clip's spelling and optionally with
// open_clip's pretrained tag ("ViT-B-32:laion2b_s34b_b79k"), to the hub repository
// holding those weights. Without a tag a name means OpenAI's weights (the ResNets
// through their open_clip copies under timm/, the ViTs through OpenAI's own
// transformers repositories), or LAION's for the architectures only LAION trained.
//
//go:embed pretrained.json
var pretrainedJSON []byte

var pretrained = func() map[string]string {
	var m map[string]string
	if err := json.Unmarshal(pretrainedJSON, &m); err != nil {
		panic("loaders: download: pretrained.json: " + err.Error())
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}()

// PretrainedRepo returns the hub repository of a model name: OpenAI's spelling
// (ViT-B/32, ViT-L/14@336px, RN50x4) or open_clip's (ViT-B-32, ViT-L-14-336,
// ViT-H-14), case-insensitively, optionally with open_clip's ":tag" of the
// pretrained weights. ok is false for a name that is not in the table (it may then
// be a repository name itself).
func PretrainedRepo(name string) (repo string, ok bool) {
	base, tag, hasTag := strings.Cut(strings.TrimSpace(name), ":")
	base = strings.TrimSuffix(strings.ReplaceAll(base, "/", "-"), "px") // ViT-L/14@336px -> ViT-L-14@336
	base = strings.ReplaceAll(base, "@", "-")
	key := strings.ToLower(base)
	if hasTag && !strings.EqualFold(tag, "openai") {
		key += ":" + strings.ToLower(tag)
	}
	repo, ok = pretrained[key]
	return repo, ok
}

// PretrainedNames lists the model names PretrainedRepo knows, sorted.
func PretrainedNames() []string {
	var m map[string]string
	_ = json.Unmarshal(pretrainedJSON, &m)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// ResolveModel turns what a user typed after "fetch model" into a repository: a
// known model name (PretrainedRepo), else an OWNER/NAME repository as it is.
func ResolveModel(arg string) (string, error) {
	if repo, ok := PretrainedRepo(arg); ok {
		return repo, nil
	}
	if err := checkRepo(arg); err != nil {
		return "", fmt.Errorf("%w, nor a model name gorgoclip knows (%s)", err, strings.Join(PretrainedNames(), ", "))
	}
	return arg, nil
}
