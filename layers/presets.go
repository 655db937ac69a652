package layers

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
)

// presetFiles are the model presets: one JSON file per architecture in the form
// ParseConfig reads, named by open_clip's spelling (ViT-B-32.json, RN50.json), as
// open_clip's model_configs/ are. Adding a preset is adding a file.
//
//go:embed presets/*.json
var presetFiles embed.FS

// Preset returns the named model architecture. Both spellings are accepted:
// OpenAI's (ViT-B/32, ViT-L/14@336px, RN50x4) and open_clip's (ViT-B-32,
// ViT-L-14-336, ViT-H-14, ViT-bigG-14), case-insensitively. The architectures OpenAI
// released use QuickGELU, as its weights need; those only LAION trained (ViT-H-14,
// ViT-g-14, ViT-bigG-14) use exact GELU. A "-quickgelu" suffix selects QuickGELU
// (open_clip's convention). Checkpoints carry their own config: presets serve random
// models, benchmarks and name lookups.
func Preset(name string) (Config, error) {
	key, quick := presetKey(name)
	names, files := presetIndex()
	file, ok := files[strings.ToLower(key)]
	if !ok {
		return Config{}, fmt.Errorf("layers: unknown model %q (known: %s)", name, strings.Join(names, ", "))
	}
	b, err := presetFiles.ReadFile(file)
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("layers: preset %s: %w", file, err)
	}
	if quick {
		c.QuickGELU = true
	}
	return c, nil
}

// PresetNames lists the presets by their file (open_clip) names, sorted.
func PresetNames() []string {
	names, _ := presetIndex()
	return names
}

// presetKey maps a model name to its preset file's base name, and reports a
// -quickgelu suffix.
func presetKey(name string) (key string, quickGELU bool) {
	key = strings.TrimSpace(name)
	if k, ok := strings.CutSuffix(strings.ToLower(key), "-quickgelu"); ok {
		key, quickGELU = key[:len(k)], true
	}
	key = strings.ReplaceAll(key, "/", "-") // ViT-B/32 -> ViT-B-32
	key = strings.TrimSuffix(key, "px")     // ViT-L/14@336px -> ViT-L-14@336
	key = strings.ReplaceAll(key, "@", "-") // -> ViT-L-14-336
	return key, quickGELU
}

// presetIndex lists the preset files: their base names, sorted, and each lower-case
// base name's path.
func presetIndex() ([]string, map[string]string) {
	entries, _ := presetFiles.ReadDir("presets")
	var names []string
	files := map[string]string{}
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".json")
		names = append(names, base)
		files[strings.ToLower(base)] = path.Join("presets", e.Name())
	}
	sort.Strings(names)
	return names, files
}
