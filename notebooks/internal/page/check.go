package page

import (
	"strings"
	"testing"
)

// Check asserts what every notebook test asserts after running its notebook: the
// page in dir embeds wantFigs figures, each an existing PNG, and the notebook printed
// its steps ("== " headings) to stdout.
func Check(t testing.TB, dir, stdout string, wantFigs int) {
	t.Helper()
	figs, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) != wantFigs {
		t.Errorf("unexpected figures: got %q want %d", figs, wantFigs)
	}
	if !strings.Contains(stdout, "== ") {
		t.Errorf("nothing printed to stdout")
	}
}
