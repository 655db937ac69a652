package weights

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Expect names the tensors a reader is to return, so that a file holding anything
// else is refused from its metadata (the safetensors header, the pickle, the .npy
// headers) before any tensor data is read, decompressed or allocated: an unknown key
// or a wrong shape costs nothing, however large the tensor it describes. A nil
// *Expect reads every tensor the file holds.
type Expect struct {
	// Shapes maps every expected key to its shape; a scalar () also matches (1,).
	Shapes map[string][]int
	// Skip, when set, reports keys that may be present but are not wanted (such as
	// Hugging Face's position_ids buffers): they are neither reported nor read.
	Skip func(key string) bool
	// Convert, when set, is applied to every tensor as soon as it is read, with the
	// key it is returned under (see ConvertEach).
	Convert func(key string, t *Tensor) error
}

// convert applies e.Convert, if any, to the tensor t read under key.
func (e *Expect) convert(key string, t *Tensor) error {
	if e == nil || e.Convert == nil {
		return nil
	}
	return e.Convert(key, t)
}

// wants reports whether the tensor named key is to be read.
func (e *Expect) wants(key string) bool {
	if e == nil {
		return true
	}
	_, ok := e.Shapes[key]
	return ok
}

// check compares the keys and shapes a file declares with e, listing every missing,
// unexpected and mis-shaped key in one error.
func (e *Expect) check(declared map[string][]int) error {
	if e == nil {
		return nil
	}
	return compareShapes(e.Shapes, declared, e.Skip, nil)
}

// compareShapes lists every key of want missing from got, every key of got not in
// want (unless ignore says so), every shape that differs, and the problems in bad,
// in one error.
func compareShapes(want, got map[string][]int, ignore func(string) bool, bad []string) error {
	var missing, unexpected []string
	misshaped := slices.Clone(bad)
	for k, s := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case !sameShape(g, s):
			misshaped = append(misshaped, fmt.Sprintf("%s: got %v want %v", k, g, s))
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
