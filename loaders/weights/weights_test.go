package weights

import (
	"testing"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
)

func TestLoadOpenAINpy(t *testing.T) {
	ck, err := Load(testfix.Shared(t, "fixtures/clip-tiny-a/openai"))
	if err != nil {
		t.Fatal(err)
	}
	if ck.Config.Vision.Heads != 2 || ck.Config.Text.Heads != 4 || ck.Config.EmbedDim != 32 {
		t.Fatalf("config %+v", ck.Config)
	}
}
