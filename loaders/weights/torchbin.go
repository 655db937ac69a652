package weights

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// maxPickleSize bounds data.pkl, which only describes tensors (a few kB for CLIP).
const maxPickleSize = 64 << 20

// torchStorageTypes maps PyTorch's legacy storage classes, which torch.save still
// names in its pickles, to their element size and NumPy type string.
var torchStorageTypes = map[string]struct {
	size  int
	numpy string
}{
	"FloatStorage": {4, "<f4"}, "HalfStorage": {2, "<f2"}, "BFloat16Storage": {2, "bf16"},
	"DoubleStorage": {8, "<f8"}, "LongStorage": {8, "<i8"}, "IntStorage": {4, "<i4"},
	"ShortStorage": {2, "<i2"}, "CharStorage": {1, "|i1"}, "ByteStorage": {1, "|u1"},
	"BoolStorage": {1, "|b1"},
}

// ReadTorchZip reads a state dict saved by torch.save (the zip format PyTorch writes
// since 1.6: archive/data.pkl plus one archive/data/KEY record per storage) as float32
// tensors. gopickle's unpickler parses data.pkl; storages are read here, so that each
// record's size is checked against the pickle's claim before anything is allocated,
// F32 data stays bit-exact, and strided views are gathered. When want is not nil the
// pickle's keys and shapes are checked against it before any storage is read, and
// only the wanted tensors are decompressed. Every allocation is bounded by the file's
// size: records may inflate at most maxInflation times the file in all, a view may
// not address more elements than its storage holds, and all views together at most
// maxViewsPerStorage times the storages they read. Errors name the file and the
// state-dict key.
func ReadTorchZip(file string, want *Expect) (map[string]*Tensor, error) {
	f, size, err := openSized(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readTorchZip(f, size, file, want)
}

// maxInflation bounds the bytes decompressed from all of an archive's records, as a
// multiple of the file's size. torch.save stores its records uncompressed, so a real
// checkpoint reads at most its own size; one re-compressed with deflate inflates
// little, since weights' mantissas are noise. A deflate bomb (1032:1 per record)
// stops here.
const maxInflation = 16

// maxViewsPerStorage bounds the elements of all views gathered, as a multiple of the
// elements of the storages they read: tied weights put two keys on one storage, but
// hundreds of keys aliasing one region would multiply the memory without new data.
const maxViewsPerStorage = 2

// readTorchZip is ReadTorchZip for a zip of size bytes in r; file names it in errors.
func readTorchZip(r io.ReaderAt, size int64, file string, want *Expect) (map[string]*Tensor, error) {
	z, err := parseTorchZip(r, size, file)
	if err != nil {
		return nil, err
	}
	return z.read(want)
}

// torchArchive is a parsed PyTorch zip archive: its records and the tensors its data.pkl
// describes, before any storage is read.
type torchArchive struct {
	file    string
	size    int64
	records map[string]*zip.File
	prefix  string // the storages' records: prefix + storage key
	entries map[string]*torchTensor
	budget  *inflateBudget
}

func (z *torchArchive) fail(format string, args ...any) error {
	return fmt.Errorf("loaders: weights: %s: "+format, append([]any{z.file}, args...)...)
}

// parseTorchZip reads the archive's directory and unpickles data.pkl: a state dict
// (torch.save) or a TorchScript module tree (torch.jit.save, with constants.pkl
// beside it), whose parameters and buffers are named as its state_dict() names them.
func parseTorchZip(r io.ReaderAt, size int64, file string) (*torchArchive, error) {
	z := &torchArchive{file: file, size: size, records: map[string]*zip.File{}}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, z.fail("not a PyTorch zip checkpoint: %v (torch.save writes zips since PyTorch 1.6; "+
			"re-save an older file with torch.save(torch.load(f, map_location=\"cpu\"), f2))", err)
	}
	var pkl *zip.File
	for _, f := range zr.File {
		z.records[f.Name] = f
		if path.Base(f.Name) == "data.pkl" && (pkl == nil || len(f.Name) < len(pkl.Name)) {
			pkl = f
		}
	}
	if pkl == nil {
		return nil, z.fail("no data.pkl record")
	}
	_, script := z.records[path.Join(path.Dir(pkl.Name), "constants.pkl")]
	if pkl.UncompressedSize64 > maxPickleSize {
		return nil, z.fail("%s is %d bytes, more than the %d-byte limit", pkl.Name, pkl.UncompressedSize64, maxPickleSize)
	}
	z.budget = &inflateBudget{left: maxInflation * size, limit: maxInflation * size}
	pb, err := readRecord(pkl, int64(pkl.UncompressedSize64), size, z.budget)
	if err != nil {
		return nil, z.fail("%s: %v", pkl.Name, err)
	}
	if err := checkPickleLengths(pb); err != nil {
		return nil, z.fail("%s: %v", pkl.Name, err)
	}
	obj, err := unpickleStateDict(pb, script)
	if err != nil {
		return nil, z.fail("%s: %v", pkl.Name, err)
	}
	if z.entries, err = stateDictEntries(obj); err != nil {
		return nil, z.fail("%s: %v", pkl.Name, err)
	}
	z.prefix = path.Dir(pkl.Name) + "/data/"
	return z, nil
}

// shapes returns every tensor's key and shape, read from the pickle alone.
func (z *torchArchive) shapes() map[string][]int {
	declared := make(map[string][]int, len(z.entries))
	for k, t := range z.entries {
		declared[k] = t.shape
	}
	return declared
}

// read checks the tensors' keys and shapes against want and reads the wanted ones.
func (z *torchArchive) read(want *Expect) (map[string]*Tensor, error) {
	if err := want.check(z.shapes()); err != nil {
		return nil, z.fail("%v", err)
	}
	var keys []string
	users := map[string]int{} // storage key -> wanted views still to gather
	for k, t := range z.entries {
		if want.wants(k) {
			keys = append(keys, k)
			users[t.storage.key]++
		}
	}
	sort.Strings(keys)
	decoded := map[string][]float32{} // storage key -> all its elements, until its last view
	var storageElems, viewElems int64
	out := make(map[string]*Tensor, len(keys))
	for _, k := range keys {
		t := z.entries[k]
		st := t.storage
		data, ok := decoded[st.key]
		if !ok {
			rec := z.records[z.prefix+st.key]
			if rec == nil {
				return nil, z.fail("key %q: storage record %s%s is missing", k, z.prefix, st.key)
			}
			if st.numel < 0 || uint64(st.numel) > rec.UncompressedSize64/uint64(st.size) {
				return nil, z.fail("key %q: storage %s claims %d elements of %d bytes, record holds %d bytes",
					k, st.key, st.numel, st.size, rec.UncompressedSize64)
			}
			raw, err := readRecord(rec, int64(st.numel)*int64(st.size), z.size, z.budget)
			if err != nil {
				return nil, z.fail("key %q: storage %s: %v", k, st.key, err)
			}
			if data, err = decodeFloat32(st.numpy, raw); err != nil {
				return nil, z.fail("key %q: storage %s: %v", k, st.key, err)
			}
			decoded[st.key] = data
			storageElems += int64(len(data))
		}
		users[st.key]--
		last := users[st.key] == 0
		tt, err := t.gather(data, last)
		if err != nil {
			return nil, z.fail("key %q: %v", k, err)
		}
		if viewElems += int64(len(tt.Data)); viewElems > maxViewsPerStorage*storageElems {
			return nil, z.fail("key %q: the views read so far hold %d elements, more than %d times the %d elements of their storages (keys aliasing one storage?)",
				k, viewElems, maxViewsPerStorage, storageElems)
		}
		if last {
			delete(decoded, st.key) // its memory goes with its last view
		}
		if err := want.convert(k, tt); err != nil {
			return nil, z.fail("key %q: %v", k, err)
		}
		out[k] = tt
	}
	return out, nil
}

// inflateBudget is what remains of the bytes an archive's records may inflate to.
type inflateBudget struct{ left, limit int64 }

// take reserves n bytes for record name, or says why it cannot.
func (b *inflateBudget) take(name string, n int64) error {
	if n > b.left {
		return fmt.Errorf("record %s would inflate to %d bytes, past the %d bytes (%d times the file) all records may take", name, n, b.limit, maxInflation)
	}
	b.left -= n
	return nil
}

// maxDeflateRatio bounds how many bytes deflate can expand one stored byte into
// (1032:1 at best), so that a record's claimed size can be checked against the
// bytes the archive really holds before a buffer of that size is allocated.
const maxDeflateRatio = 1032

// readRecord reads exactly n bytes from the start of a zip record of an archive of
// zipSize bytes, taking them from budget. The zip directory's sizes are claims: n
// must fit in what the record's stored bytes can hold, and those must lie inside the
// archive, before anything is allocated.
func readRecord(f *zip.File, n, zipSize int64, budget *inflateBudget) ([]byte, error) {
	off, err := f.DataOffset()
	if err != nil {
		return nil, err
	}
	stored := f.CompressedSize64
	if off < 0 || stored > uint64(zipSize) || uint64(off) > uint64(zipSize)-stored {
		return nil, fmt.Errorf("record %s: %d stored bytes at offset %d run past the end of the %d-byte file", f.Name, stored, off, zipSize)
	}
	limit := stored
	if f.Method != zip.Store {
		limit = stored*maxDeflateRatio + 64
	}
	if n < 0 || uint64(n) > limit {
		return nil, fmt.Errorf("record %s: %d bytes wanted, but it stores only %d bytes (method %d)", f.Name, n, stored, f.Method)
	}
	if err := budget.take(f.Name, n); err != nil {
		return nil, err
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("reading %s: %v", f.Name, err)
	}
	return buf, nil
}

// torchStorage is a storage named by the pickle; its bytes are read afterwards.
type torchStorage struct {
	key   string
	numel int
	size  int
	numpy string
}

// torchTensor is a (possibly strided) view into a storage.
type torchTensor struct {
	storage *torchStorage
	offset  int
	shape   []int
	stride  []int
}

// gather copies the view out of the decoded storage into a C-ordered tensor, after
// checking that every element it addresses lies inside the storage and that it
// addresses no more elements than the storage holds (a stride-0 view may claim
// billions from one element). When own is set the caller hands data over: a view
// that is the whole storage in order then takes it without a copy.
func (t *torchTensor) gather(data []float32, own bool) (*Tensor, error) {
	if len(t.shape) != len(t.stride) {
		return nil, fmt.Errorf("shape %v and stride %v differ in length", t.shape, t.stride)
	}
	// Every product below is bounded before it is formed, so hostile sizes and
	// strides cannot overflow.
	if t.offset < 0 || t.offset > len(data) {
		return nil, fmt.Errorf("storage offset %d outside storage %s of %d elements", t.offset, t.storage.key, len(data))
	}
	n, last := 1, t.offset
	for i, d := range t.shape {
		s := t.stride[i]
		if d < 0 || s < 0 {
			return nil, fmt.Errorf("negative shape %v or stride %v", t.shape, t.stride)
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > max(len(data), 1)/d {
			return nil, fmt.Errorf("shape %v is too large: it addresses more elements than the %d of storage %s", t.shape, len(data), t.storage.key)
		}
		n *= d
		if d > 1 {
			if s > (len(data)-last)/(d-1) {
				return nil, fmt.Errorf("view (offset %d, shape %v, stride %v) runs past storage %s of %d elements",
					t.offset, t.shape, t.stride, t.storage.key, len(data))
			}
			last += (d - 1) * s
		}
	}
	if n > 0 && last >= len(data) {
		return nil, fmt.Errorf("view (offset %d, shape %v, stride %v) runs past storage %s of %d elements",
			t.offset, t.shape, t.stride, t.storage.key, len(data))
	}
	shape := append([]int{}, t.shape...)
	if own && t.offset == 0 && n == len(data) && t.contiguous() {
		return &Tensor{Shape: shape, Data: data}, nil
	}
	out := &Tensor{Shape: shape, Data: make([]float32, n)}
	if n == 0 {
		return out, nil
	}
	idx := make([]int, len(t.shape))
	for i := range out.Data {
		pos := t.offset
		for j, v := range idx {
			pos += v * t.stride[j]
		}
		out.Data[i] = data[pos]
		for j := len(idx) - 1; j >= 0; j-- { // odometer increment, last axis fastest
			if idx[j]++; idx[j] < t.shape[j] {
				break
			}
			idx[j] = 0
		}
	}
	return out, nil
}

// contiguous reports whether the view's strides are C order for its shape (axes of
// size 1 may have any stride).
func (t *torchTensor) contiguous() bool {
	want := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.shape[i]
	}
	return true
}

// storageClass stands for torch.XStorage in the pickle.
type storageClass struct{ name string }

// rebuildTensor stands for torch._utils._rebuild_tensor_v2(storage, offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want at least 4", len(args))
	}
	st, ok1 := args[0].(*torchStorage)
	off, ok2 := args[1].(int)
	size, ok3 := args[2].(*types.Tuple)
	stride, ok4 := args[3].(*types.Tuple)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: unexpected argument types %T, %T, %T, %T", args[0], args[1], args[2], args[3])
	}
	t := &torchTensor{storage: st, offset: off}
	var err error
	if t.shape, err = intTuple(size); err != nil {
		return nil, err
	}
	if t.stride, err = intTuple(stride); err != nil {
		return nil, err
	}
	return t, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks): a Parameter is its data.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...interface{}) (interface{}, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter: no arguments")
	}
	if _, ok := args[0].(*torchTensor); !ok {
		return nil, fmt.Errorf("_rebuild_parameter: argument is %T, not a tensor", args[0])
	}
	return args[0], nil
}

func intTuple(t *types.Tuple) ([]int, error) {
	out := make([]int, t.Len())
	for i := range out {
		v, ok := t.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("tuple of ints expected, got %v", t)
		}
		out[i] = v
	}
	return out, nil
}

// unpickleStateDict runs the unpickler with the few torch classes a state dict needs;
// anything else torch-specific is refused. A panic inside the third-party unpickler on
// hostile input becomes an error.
func unpickleStateDict(b []byte, script bool) (obj interface{}, err error) {
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(b))
	u.FindClass = func(module, name string) (interface{}, error) {
		switch {
		case module == "torch._utils" && name == "_rebuild_tensor_v2":
			return rebuildTensor{}, nil
		case module == "torch._utils" && name == "_rebuild_parameter":
			return rebuildParameter{}, nil
		case module == "torch":
			if _, ok := torchStorageTypes[name]; ok {
				return &storageClass{name: name}, nil
			}
		case script && (module == "__torch__" || strings.HasPrefix(module, "__torch__.")):
			return scriptClass{}, nil // a TorchScript module: its attributes follow
		}
		if strings.HasPrefix(module, "torch") {
			return nil, fmt.Errorf("unsupported class %s.%s", module, name)
		}
		return types.NewGenericClass(module, name), nil
	}
	u.PersistentLoad = func(id interface{}) (interface{}, error) {
		// ('storage', storage_type, key, location, numel)
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 {
			return nil, fmt.Errorf("persistent id %v is not a storage tuple", id)
		}
		kind, _ := t.Get(0).(string)
		cls, ok1 := t.Get(1).(*storageClass)
		key, ok2 := t.Get(2).(string)
		numel, ok3 := t.Get(4).(int)
		if kind != "storage" || !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("persistent id %v is not a storage tuple", id)
		}
		dt := torchStorageTypes[cls.name]
		return &torchStorage{key: key, numel: numel, size: dt.size, numpy: dt.numpy}, nil
	}
	return u.Load()
}

// stateDictEntries returns the tensors of a pickled dict or OrderedDict by key.
func stateDictEntries(obj interface{}) (map[string]*torchTensor, error) {
	out := map[string]*torchTensor{}
	add := func(k, v interface{}) error {
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("state dict key %v is %T, not a string", k, k)
		}
		t, ok := v.(*torchTensor)
		if !ok {
			return fmt.Errorf("state dict key %q holds %T, not a tensor", key, v)
		}
		if _, dup := out[key]; dup {
			return fmt.Errorf("state dict key %q appears twice", key)
		}
		out[key] = t
		return nil
	}
	switch d := obj.(type) {
	case *scriptModule:
		if err := d.walk("", add); err != nil {
			return nil, err
		}
	case *types.Dict:
		for _, e := range *d {
			if err := add(e.Key, e.Value); err != nil {
				return nil, err
			}
		}
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			kv := e.Value.(*types.OrderedDictEntry)
			if err := add(kv.Key, kv.Value); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("top-level object is %T, not a state dict", obj)
	}
	return out, nil
}

// maxModuleDepth bounds the nesting of TorchScript modules (CLIP's deepest key,
// visual.transformer.resblocks.0.attn.out_proj.weight, is 5 modules down).
const maxModuleDepth = 32

// scriptClass stands for the classes of a TorchScript archive's data.pkl
// (__torch__.*: the scripted or traced modules): instances are plain attribute sets.
type scriptClass struct{}

// PyNew makes an empty module; BUILD then sets its attributes (PySetState).
func (scriptClass) PyNew(args ...interface{}) (interface{}, error) { return &scriptModule{}, nil }

// scriptModule is one TorchScript module: its attributes, in order (parameters and
// buffers as tensors, submodules as modules, and flags such as training).
type scriptModule struct{ attrs *types.Dict }

// PySetState records the module's attribute dictionary.
func (m *scriptModule) PySetState(state interface{}) error {
	d, ok := state.(*types.Dict)
	if !ok {
		return fmt.Errorf("TorchScript module state is %T, not a dict", state)
	}
	m.attrs = d
	return nil
}

// walk calls add with every tensor of the module tree under its dotted path, the
// names state_dict() gives them; other attributes (flags, hooks) are not weights.
func (m *scriptModule) walk(prefix string, add func(k, v interface{}) error) error {
	if m.attrs == nil {
		return nil
	}
	if strings.Count(prefix, ".") > maxModuleDepth { // a pickle can make a module its own child
		return fmt.Errorf("TorchScript modules nested deeper than %d at %q", maxModuleDepth, prefix)
	}
	for _, e := range *m.attrs {
		name, ok := e.Key.(string)
		if !ok {
			return fmt.Errorf("TorchScript attribute name %v is %T, not a string", e.Key, e.Key)
		}
		switch v := e.Value.(type) {
		case *torchTensor:
			if err := add(prefix+name, v); err != nil {
				return err
			}
		case *scriptModule:
			if err := v.walk(prefix+name+".", add); err != nil {
				return err
			}
		}
	}
	return nil
}
