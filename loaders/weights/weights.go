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
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gorgoclip/gorgoclip/internal/regfile"
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
	// FormatOpenAIPt is one of OpenAI's own .pt files, what clip.load downloads: a
	// TorchScript archive whose module tree holds the state dict.
	FormatOpenAIPt = "openai-pt"
)

// Option changes how Load reads a checkpoint.
type Option func(*options)

type options struct {
	prepare func(layers.Config) (func(key string, t *Tensor) error, error)
}

// ConvertEach has Load pass every tensor, under its OpenAI key, to the function
// prepare returns for the checkpoint's config, as soon as the tensor is read: before
// the next one is. A function that replaces the float32 values by their 16-bit form
// (Tensor.SetHalf) thus keeps the checkpoint from ever being whole in float32 (what
// clip.Load does for a 16-bit model). A Hugging Face tensor that OpenAI's layout
// transposes or concatenates is passed once it is: text_projection and visual.proj
// as soon as read and transposed, a block's in_proj as soon as the last of its q, k
// and v is read (hfAssembly). Each returned tensor is passed exactly once.
func ConvertEach(prepare func(layers.Config) (func(key string, t *Tensor) error, error)) Option {
	return func(o *options) { o.prepare = prepare }
}

// expect returns what a reader may return for a model with config c (expectFor),
// converting each tensor as ConvertEach says.
func (o *options) expect(c layers.Config) (*Expect, error) {
	want, err := expectFor(c)
	if err != nil || o.prepare == nil {
		return want, err
	}
	want.Convert, err = o.prepare(c)
	return want, err
}

// Load reads the checkpoint in dir, whichever layout it has (dir may also be one of
// OpenAI's own .pt files, a TorchScript archive): open_clip's
// (open_clip_config.json, refusing every option it does not implement by name), Hugging Face
// (model.safetensors, model.safetensors.index.json or pytorch_model.bin, tried in that
// order, with config.json), else a directory of OpenAI-named .npy files with an
// OpenAI-style or gorgoclip config.json, or with none, in which case the config is
// inferred from the shapes as OpenAI's build_model does. Tensors come back under
// OpenAI names and are checked against the config: every missing, unexpected and
// mis-shaped tensor is listed in one error. opts (ConvertEach) change how it reads.
func Load(dir string, opts ...Option) (*Checkpoint, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %w", err)
	}
	if st.Mode().IsRegular() && strings.HasSuffix(dir, ".pt") {
		return loadOpenAIPt(dir, &o)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("loaders: weights: %s is not a directory (or one of OpenAI's .pt files)", dir)
	}
	if isFile(filepath.Join(dir, openCLIPConfigFile)) {
		return loadOpenCLIP(dir, &o)
	}
	kind, cfgBytes, err := readConfigFile(dir)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.json")
	ck := &Checkpoint{Dir: dir}
	var source string // what errors about the tensors name
	// readHF reads a Hugging Face checkpoint, refusing from its metadata alone any
	// key or shape the config does not expect.
	var readHF func(want *Expect) (map[string]*Tensor, error)
	switch {
	case isFile(filepath.Join(dir, "model.safetensors")):
		source, ck.Format = filepath.Join(dir, "model.safetensors"), FormatHFSafetensors
		readHF = func(want *Expect) (map[string]*Tensor, error) { return ReadSafetensors(source, want) }
	case isFile(filepath.Join(dir, "model.safetensors.index.json")):
		source, ck.Format = filepath.Join(dir, "model.safetensors.index.json"), FormatHFSafetensors
		readHF = func(want *Expect) (map[string]*Tensor, error) { return readShardedSafetensors(source, want) }
	case isFile(filepath.Join(dir, "pytorch_model.bin")):
		source, ck.Format = filepath.Join(dir, "pytorch_model.bin"), FormatHFBin
		readHF = func(want *Expect) (map[string]*Tensor, error) { return ReadTorchZip(source, want) }
	default:
		ck.Format = FormatOpenAINpy
		if kind == configGorgoclip {
			ck.Format = FormatGorgoclip
		}
	}
	if readHF != nil {
		if kind != configHF {
			return nil, fmt.Errorf("loaders: weights: %s: Hugging Face weights need a Hugging Face config.json (CLIPConfig) beside them", source)
		}
		if ck.Config, err = parseConfig(kind, cfgBytes, cfgPath); err != nil {
			return nil, err
		}
		hfShapes, err := ExpectedHFShapes(ck.Config)
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: %w", cfgPath, err)
		}
		want, err := o.expect(ck.Config)
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: %w", cfgPath, err)
		}
		asm := newHFAssembly(want.Convert)
		hf, err := readHF(&Expect{Shapes: hfShapes, Skip: hfIgnored.MatchString, Convert: asm.read})
		if err != nil {
			return nil, err
		}
		if ck.Tensors, err = fromHF(ck.Config, hf, asm.done); err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: %w", source, err)
		}
		return ck, canonicalShapes(ck.Config, ck.Tensors)
	}
	if kind == configNone {
		shapes, err := npyShapes(dir)
		if err != nil {
			return nil, err
		}
		if ck.Config, err = inferConfig(shapes); err != nil {
			return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
		}
	} else if ck.Config, err = parseConfig(kind, cfgBytes, cfgPath); err != nil {
		return nil, err
	}
	if err := ck.Config.Validate(); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	want, err := o.expect(ck.Config)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	if ck.Tensors, err = readNpyDir(dir, want); err != nil {
		return nil, err
	}
	if err := Validate(ck.Config, ck.Tensors); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	return ck, canonicalShapes(ck.Config, ck.Tensors)
}

// loadOpenAIPt reads one of OpenAI's .pt files (ViT-B-32.pt, RN50.pt, ...): a
// TorchScript archive, whose parameters are read as clip.load(jit=False) reads them
// (model.state_dict(), then build_model), the config inferred from their shapes as
// build_model does.
func loadOpenAIPt(file string, o *options) (*Checkpoint, error) {
	f, size, err := openSized(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := parseTorchZip(f, size, file)
	if err != nil {
		return nil, err
	}
	shapes := map[string]*Tensor{}
	for k, s := range z.shapes() {
		if !skipEntry(k) {
			shapes[k] = &Tensor{Shape: s}
		}
	}
	ck := &Checkpoint{Dir: file, Format: FormatOpenAIPt}
	if ck.Config, err = inferConfig(shapes); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", file, err)
	}
	if err := ck.Config.Validate(); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", file, err)
	}
	want, err := o.expect(ck.Config)
	if err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", file, err)
	}
	if ck.Tensors, err = z.read(want); err != nil {
		return nil, err
	}
	return ck, canonicalShapes(ck.Config, ck.Tensors)
}

// expectFor is what a reader may return for a model with config c: the weights its
// modules declare, and, skipped unread, the entries that are never weights
// (declared buffers such as BatchNorm counters, OpenAI's TorchScript constants).
func expectFor(c layers.Config) (*Expect, error) {
	w, err := layers.Declared(c)
	if err != nil {
		return nil, err
	}
	shapes := map[string][]int{}
	for _, p := range w.Params() {
		shapes[p.Key] = p.Shape
	}
	return &Expect{Shapes: shapes, Skip: func(k string) bool { return skipEntry(k) || w.Expects(k) }}, nil
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
			t.Shape = []int{} // the tensor was just read: it is the loader's own
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

// npyFiles returns the KEY.npy files of dir by key, leaving out those skipEntry names.
func npyFiles(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.npy"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("loaders: weights: %s: no checkpoint found (looked for model.safetensors, "+
			"model.safetensors.index.json, pytorch_model.bin and OpenAI-named .npy files)", dir)
	}
	out := make(map[string]string, len(files))
	for _, f := range files {
		if key := strings.TrimSuffix(filepath.Base(f), ".npy"); !skipEntry(key) {
			out[key] = f
		}
	}
	return out, nil
}

// npyShapes reads the header of every KEY.npy in dir and returns the shapes, as
// tensors without data, by key: enough to infer a config, nothing allocated for data.
func npyShapes(dir string) (map[string]*Tensor, error) {
	files, err := npyFiles(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Tensor, len(files))
	for _, key := range slices.Sorted(maps.Keys(files)) { // the first bad file reported is always the same
		h, err := npyHeader(files[key])
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: key %s: %w", key, err)
		}
		out[key] = &Tensor{Shape: h.Shape}
	}
	return out, nil
}

// npyHeader reads the header of the regular .npy file at path.
func npyHeader(path string) (npy.Header, error) {
	f, fi, err := regfile.Open(path)
	if err != nil {
		return npy.Header{}, err
	}
	defer f.Close()
	return npy.ReadHeader(f, fi.Size(), path)
}

// readNpyDir reads the KEY.npy files of dir as float32 (float16 widened exactly),
// after checking every file's key and header shape against want.
func readNpyDir(dir string, want *Expect) (map[string]*Tensor, error) {
	shapes, err := npyShapes(dir)
	if err != nil {
		return nil, err
	}
	declared := make(map[string][]int, len(shapes))
	for k, t := range shapes {
		declared[k] = t.Shape
	}
	if err := want.check(declared); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", dir, err)
	}
	out := make(map[string]*Tensor, len(shapes))
	for _, key := range slices.Sorted(maps.Keys(shapes)) { // one order: the same peak memory every run
		if !want.wants(key) {
			continue
		}
		t, err := npy.ReadFloat32(filepath.Join(dir, key+".npy"))
		if err != nil {
			return nil, fmt.Errorf("loaders: weights: key %s: %w", key, err)
		}
		tt := &Tensor{Shape: t.Shape, Data: t.Data}
		if err := want.convert(key, tt); err != nil {
			return nil, fmt.Errorf("loaders: weights: key %s: %w", key, err)
		}
		out[key] = tt
	}
	return out, nil
}

// readShardedSafetensors reads the shards listed by a model.safetensors.index.json
// ({"weight_map": {key: file}}). Every shard's header is checked first: each key must
// be where the index says, and the keys and shapes of all shards together must match
// want (when not nil), before any tensor data is read.
func readShardedSafetensors(index string, want *Expect) (map[string]*Tensor, error) {
	weightMap, err := readShardIndex(index)
	if err != nil {
		return nil, err
	}
	shards := map[string]bool{}
	for k, f := range weightMap {
		// Shards live beside the index; a path elsewhere is refused, not followed.
		if f == "" || f != filepath.Base(f) || f == "." || f == ".." {
			return nil, fmt.Errorf("loaders: weights: %s: key %s: shard %q is not a file name in the same directory", index, k, f)
		}
		shards[f] = true
	}
	declared := map[string][]int{}
	var files []*stFile
	for _, name := range slices.Sorted(maps.Keys(shards)) {
		fh, size, err := openSized(filepath.Join(filepath.Dir(index), name))
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		f, err := parseSafetensors(fh, size, fh.Name())
		if err != nil {
			return nil, err
		}
		for k, t := range f.tensors {
			if weightMap[k] != name {
				return nil, fmt.Errorf("loaders: weights: %s: key %s is in %s but the index maps it to %q", index, k, name, weightMap[k])
			}
			declared[k] = t.shape
		}
		files = append(files, f)
	}
	var missing []string
	for k, f := range weightMap {
		if _, ok := declared[k]; !ok {
			missing = append(missing, k+" (in "+f+")")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("loaders: weights: %s: %d indexed keys are missing from their shards: %s", index, len(missing), strings.Join(missing, ", "))
	}
	if err := want.check(declared); err != nil {
		return nil, fmt.Errorf("loaders: weights: %s: %w", index, err)
	}
	out := map[string]*Tensor{}
	for _, f := range files {
		ts, err := f.read(want)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, ts)
	}
	return out, nil
}

// ExpectedShapes returns every OpenAI state-dict key of a model with config c and its
// shape: the weights its modules declare (layers.Declared), the one list loading,
// shape checks and random checkpoints share. Non-weight buffers a checkpoint may also
// hold (BatchNorm's num_batches_tracked) are not listed.
func ExpectedShapes(c layers.Config) (map[string][]int, error) {
	e, err := expectFor(c)
	if err != nil {
		return nil, err
	}
	return e.Shapes, nil
}

// Validate checks tensors against the keys and shapes config c declares and lists
// every missing, unexpected and mis-shaped key in one error. Entries that are never
// weights (declared buffers) may be present or not.
func Validate(c layers.Config, tensors map[string]*Tensor) error {
	e, err := expectFor(c)
	if err != nil {
		return err
	}
	return compare(e.Shapes, tensors, e.Skip)
}

// compare lists every key of want missing from got, every key of got not in want
// (unless ignore says so), every shape that differs and every tensor whose data
// disagrees with its shape, in one error.
func compare(want map[string][]int, got map[string]*Tensor, ignore func(string) bool) error {
	shapes := make(map[string][]int, len(got))
	var bad []string
	for k, t := range got {
		s, wanted := want[k]
		switch {
		case t == nil && wanted:
			shapes[k] = s // reported once, as nil rather than mis-shaped
			bad = append(bad, fmt.Sprintf("%s: nil tensor", k))
			continue
		case t == nil:
			shapes[k] = nil
			continue
		case wanted && sameShape(t.Shape, s) && elems(t.Shape) != t.Len():
			bad = append(bad, fmt.Sprintf("%s: shape %v but %d values", k, t.Shape, t.Len()))
		}
		shapes[k] = t.Shape
	}
	return compareShapes(want, shapes, ignore, bad)
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
