package weights

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/atomicfile"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// Save writes ck in the project's own layout (FormatGorgoclip): one float32 KEY.npy per
// tensor, named by its OpenAI key, and config.json holding ck.Config as layers.Config
// JSON. ck is validated first, so whatever Save writes, Load reads back. Each file is
// written atomically; config.json comes last. dir is created if needed; Save refuses a
// dir holding .npy files that ck does not have, so two models never mix.
func Save(ck *Checkpoint, dir string) error {
	if ck == nil {
		return fmt.Errorf("loaders: weights: Save: nil checkpoint")
	}
	if err := ck.Config.Validate(); err != nil {
		return fmt.Errorf("loaders: weights: Save %s: %w", dir, err)
	}
	if err := Validate(ck.Config, ck.Tensors); err != nil {
		return fmt.Errorf("loaders: weights: Save %s: %w", dir, err)
	}
	for k, t := range ck.Tensors {
		if t.Half != nil {
			return fmt.Errorf("loaders: weights: Save %s: key %s holds 16-bit values (a checkpoint loaded for a 16-bit model): save one loaded in float32", dir, k)
		}
	}
	existing, err := filepath.Glob(filepath.Join(dir, "*.npy"))
	if err != nil {
		return fmt.Errorf("loaders: weights: Save %s: %w", dir, err)
	}
	var stale []string
	for _, f := range existing {
		if _, ok := ck.Tensors[strings.TrimSuffix(filepath.Base(f), ".npy")]; !ok {
			stale = append(stale, filepath.Base(f))
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return fmt.Errorf("loaders: weights: Save %s: directory holds %d .npy files of another model: %s",
			dir, len(stale), strings.Join(stale, ", "))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("loaders: weights: %w", err)
	}
	keys := make([]string, 0, len(ck.Tensors))
	for k := range ck.Tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := ck.Tensors[k]
		if err := npy.WriteFloat32(filepath.Join(dir, k+".npy"), t.Shape, t.Data); err != nil {
			return fmt.Errorf("loaders: weights: Save key %s: %w", k, err)
		}
	}
	b, err := json.MarshalIndent(ck.Config, "", "  ")
	if err != nil {
		return fmt.Errorf("loaders: weights: Save %s: %w", dir, err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "config.json"), append(b, '\n')); err != nil {
		return fmt.Errorf("loaders: weights: Save %s: %w", dir, err)
	}
	return nil
}
