package datasets

import (
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

func TestLabelerMatchesItem(t *testing.T) {
	dir := testfix.FashionMNIST(t)
	for i, limit := range []int{0, 50} {
		ds, err := Open("fashion-mnist:"+dir, "test", Options{Limit: limit, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		l, ok := ds.(Labeler)
		if !ok {
			t.Fatalf("test %d: %T does not implement Labeler", i, ds)
		}
		for j := 0; j < 50; j++ {
			it, err := ds.Item(j)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Label(j); got != it.Label {
				t.Errorf("test %d: item %d: got label %d want %d", i, j, got, it.Label)
			}
		}
	}
}
