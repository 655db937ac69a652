// Package weights loads CLIP checkpoints into OpenAI's state-dict naming.
//
// Every layout ends as a Checkpoint: float32 tensors keyed by OpenAI's state-dict keys
// (visual.conv1.weight, transformer.resblocks.0.attn.in_proj_weight, text_projection,
// logit_scale, ...) with the model's layers.Config. Load reads OpenAI-named .npy
// directories (with or without config.json), Hugging Face directories (safetensors,
// sharded or not, or pytorch_model.bin) and the project's own layout, which Save
// writes. Hugging Face names are mapped by one table (hfNames in hfnames.go) that
// records each rename, transpose and q/k/v concatenation with its reason.
//
// The readers here parse untrusted files: every length is checked against the file
// before anything is allocated, and errors name the file and the key.
package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/layers"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
)

// Tensor is a C-ordered float32 array (layers.Tensor: the loaders produce what the
// modules consume, without layers importing the loaders).
type Tensor = layers.Tensor

// Checkpoint is a CLIP model's weights under OpenAI names, with its config.
type Checkpoint struct {
	// Config describes the architecture.
	Config layers.Config
	// Tensors maps OpenAI state-dict keys to weights.
	Tensors map[string]*Tensor
	// Dir is the directory the checkpoint was loaded from.
	Dir string
	// Format names the layout it was read from: one of the Format constants.
	Format string
}

// Format names of the layouts Load reads, as recorded in Checkpoint.Format.
const (
	// FormatOpenAINpy is a directory of .npy files named by OpenAI's state-dict keys,
	// with an OpenAI-style config.json or none (the config is then inferred).
	FormatOpenAINpy = "openai-npy"
	// FormatHFSafetensors is a Hugging Face directory: config.json and
	// model.safetensors (or shards listed in model.safetensors.index.json).
	FormatHFSafetensors = "hf-safetensors"
	// FormatHFBin is a Hugging Face directory with pytorch_model.bin (torch.save zip).
	FormatHFBin = "hf-bin"
	// FormatGorgoclip is the project's own layout, written by Save: OpenAI-named
	// float32 .npy files and config.json holding a layers.Config.
	FormatGorgoclip = "gorgoclip"
	// FormatOpenCLIP is open_clip's hub layout: open_clip_config.json and
	// open_clip_model.safetensors (or open_clip_pytorch_model.bin) under OpenAI's keys.
	FormatOpenCLIP = "open_clip"
)

// Load reads the checkpoint in dir, whichever layout it has: open_clip's
// (open_clip_config.json, refusing every option it does not implement by name), Hugging Face
// (model.safetensors, model.safetensors.index.json or pytorch_model.bin, tried in that
// order, with config.json), else a directory of OpenAI-named .npy files with an
// OpenAI-style or gorgoclip config.json, or with none, in which case the config is
// inferred from the shapes as OpenAI's build_model does. Tensors come back under
// OpenAI names and are checked against the config: every missing, unexpected and
// mis-shaped tensor is listed in one error.
func Load(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("loaders: weights: %s is not a directory", dir)
	}
	if isFile(filepath.Join(dir, openCLIPConfigFile)) {
		return loadOpenCLIP(dir)
	}
	kind, cfgBytes, err := readConfigFile(dir)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.json")
	ck := &Checkpoint{Dir: dir}
	var source string // what errors about the tensors name
	var hf map[string]*Tensor
	switch {
	case isFile(filepath.Join(dir, "model.safetensors")):
		source, ck.Format = filepath.Join(dir, "model.safetensors"), FormatHFSafetensors
		hf, err = ReadSafetensors(source)
	case isFile(filepath.Join(dir, "model.safetensors.index.json")):
		source, ck.Format = filepath.Join(dir, "model.safetensors.index.json"), FormatHFSafetensors
		hf, err = readShardedSafetensors(source)
	case isFile(filepath.Join(dir, "pytorch_model.bin")):
		source, ck.Format = filepath.Join(dir, "pytorch_model.bin"), FormatHFBin
		hf, err = ReadTorchZip(source)
	default:
		source, ck.Format = dir, FormatOpenAINpy
		if kind == configGorgoclip {
			ck.Format = FormatGorgoclip
		}
		ck.Tensors, err = readNpyDir(dir)
	}
	if err != nil {
		return nil, err
	}
	if hf != nil {
		if kind != configHF {
			return nil, fmt.Errorf("loaders: weights: %s: Hugging Face weights need a Hugging Face config.json (CLIPConfig) beside them", source)
		}
		if ck.Config, err = parseConfig(kind, cfgBytes, cfgPath); err != nil {
			return nil, err
		}
		if ck.Tensors, err = FromHF(ck.Config, hf); err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: %w", source, err)
		}
		return ck, canonicalShapes(ck.Config, ck.Tensors)
	}
	if kind == configNone {
		if ck.Config, err = inferConfig(ck.Tensors); err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
		}
	} else if ck.Config, err = parseConfig(kind, cfgBytes, cfgPath); err != nil {
		return nil, err
	}
	if err := ck.Config.Validate(); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	if err := Validate(ck.Config, ck.Tensors); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	return ck, canonicalShapes(ck.Config, ck.Tensors)
}

// canonicalShapes gives scalars stored as shape (1,) (as some exports write
// logit_scale) the shape () that ExpectedShapes names, so every layout loads alike.
func canonicalShapes(c layers.Config, tensors map[string]*Tensor) error {
	shapes, err := ExpectedShapes(c)
	if err != nil {
		return err
	}
	for k, s := range shapes {
		if t := tensors[k]; t != nil && len(s) == 0 && len(t.Shape) == 1 {
			tensors[k] = &Tensor{Shape: []int{}, Data: t.Data}
		}
	}
	return nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// jitConstants are the non-weight entries of OpenAI's TorchScript state dicts, which
// build_model deletes; an exported directory may still hold them.
var jitConstants = map[string]bool{"input_resolution": true, "context_length": true, "vocab_size": true}

// skipEntry reports the state-dict entries that are never weights: OpenAI's
// TorchScript constants and BatchNorm's int64 step counters (layers.BatchNormCounter),
// which eval-mode inference never reads.
func skipEntry(key string) bool {
	return jitConstants[key] || strings.HasSuffix(key, "."+layers.BatchNormCounter)
}

// readNpyDir reads every KEY.npy in dir as float32 (float16 widened exactly).
func readNpyDir(dir string) (map[string]*Tensor, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.npy"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("loaders: weights: %s: no checkpoint found (looked for model.safetensors, "+
			"model.safetensors.index.json, pytorch_model.bin and OpenAI-named .npy files)", dir)
	}
	out := make(map[string]*Tensor, len(files))
	for _, f := range files {
		key := strings.TrimSuffix(filepath.Base(f), ".npy")
		if skipEntry(key) {
			continue
		}
		t, err := npy.ReadFloat32(f)
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: key %s: %w", key, err)
		}
		out[key] = &Tensor{Shape: t.Shape, Data: t.Data}
	}
	return out, nil
}

// readShardedSafetensors reads the shards listed by a model.safetensors.index.json
// ({"weight_map": {key: file}}) and checks that each key is where the index says.
func readShardedSafetensors(index string) (map[string]*Tensor, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %v", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("loaders: weights: %s: empty weight_map", index)
	}
	shards := map[string]bool{}
	for k, f := range idx.WeightMap {
		// Shards live beside the index; a path elsewhere is refused, not followed.
		if f == "" || f != filepath.Base(f) || f == "." || f == ".." {
			return nil, fmt.Errorf("loaders: weights: %s: key %s: shard %q is not a file name in the same directory", index, k, f)
		}
		shards[f] = true
	}
	names := make([]string, 0, len(shards))
	for f := range shards {
		names = append(names, f)
	}
	sort.Strings(names)
	out := map[string]*Tensor{}
	for _, f := range names {
		path := filepath.Join(filepath.Dir(index), f)
		ts, err := ReadSafetensors(path)
		if err != nil {
			return nil, err
		}
		for k, t := range ts {
			if idx.WeightMap[k] != f {
				return nil, fmt.Errorf("loaders: weights: %s: key %s is in %s but the index maps it to %q", index, k, f, idx.WeightMap[k])
			}
			out[k] = t
		}
	}
	var missing []string
	for k, f := range idx.WeightMap {
		if _, ok := out[k]; !ok {
			missing = append(missing, k+" (in "+f+")")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("loaders: weights: %s: %d indexed keys are missing from their shards: %s", index, len(missing), strings.Join(missing, ", "))
	}
	return out, nil
}

// ExpectedShapes returns every OpenAI state-dict key of a model with config c and its
// shape: the weights its modules declare (layers.Declared), the one list loading,
// shape checks and random checkpoints share. Non-weight buffers a checkpoint may also
// hold (BatchNorm's num_batches_tracked) are not listed.
func ExpectedShapes(c layers.Config) (map[string][]int, error) {
	w, err := layers.Declared(c)
	if err != nil {
		return nil, err
	}
	m := map[string][]int{}
	for _, p := range w.Params() {
		m[p.Key] = p.Shape
	}
	return m, nil
}

// Validate checks tensors against the keys and shapes config c declares and lists
// every missing, unexpected and mis-shaped key in one error. Declared buffers
// (num_batches_tracked) may be present or not.
func Validate(c layers.Config, tensors map[string]*Tensor) error {
	w, err := layers.Declared(c)
	if err != nil {
		return err
	}
	want := map[string][]int{}
	for _, p := range w.Params() {
		want[p.Key] = p.Shape
	}
	return compare(want, tensors, w.Expects)
}

// compare lists every key of want missing from got, every key of got not in want
// (unless ignore says so) and every shape that differs, in one error.
func compare(want map[string][]int, got map[string]*Tensor, ignore func(string) bool) error {
	var missing, unexpected, misshaped []string
	for k, s := range want {
		t, ok := got[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		switch {
		case t == nil:
			misshaped = append(misshaped, fmt.Sprintf("%s: nil tensor", k))
		case !sameShape(t.Shape, s):
			misshaped = append(misshaped, fmt.Sprintf("%s: got %v want %v", k, t.Shape, s))
		case elems(t.Shape) != len(t.Data):
			misshaped = append(misshaped, fmt.Sprintf("%s: shape %v but %d values", k, t.Shape, len(t.Data)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && (ignore == nil || !ignore(k)) {
			unexpected = append(unexpected, k)
		}
	}
	if len(missing)+len(unexpected)+len(misshaped) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Strings(misshaped)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing %d keys: %s", len(missing), strings.Join(missing, ", ")))
	}
	if len(unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("unexpected %d keys: %s", len(unexpected), strings.Join(unexpected, ", ")))
	}
	if len(misshaped) > 0 {
		parts = append(parts, fmt.Sprintf("mis-shaped %d keys: %s", len(misshaped), strings.Join(misshaped, "; ")))
	}
	return errors.New(strings.Join(parts, "; "))
}

func elems(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func sameShape(a, b []int) bool {
	// A scalar may be stored as shape () or (1,).
	if len(b) == 0 && len(a) == 1 && a[0] == 1 {
		return true
	}
	return slices.Equal(a, b)
}
