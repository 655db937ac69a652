package weights

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTorchScriptHostile checks what a TorchScript archive cannot do: a module that
// holds itself (the pickle memo allows it) is refused rather than walked forever,
// and a .pt that is no zip says how to re-save it.
func TestTorchScriptHostile(t *testing.T) {
	// PROTO 2; GLOBAL __torch__ M; EMPTY_TUPLE; NEWOBJ; BINPUT 0; EMPTY_DICT;
	// BINUNICODE "self"; BINGET 0; SETITEM; BUILD; STOP.
	pkl := []byte("\x80\x02c__torch__\nM\n)\x81q\x00}X\x04\x00\x00\x00selfh\x00sb.")
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range map[string][]byte{"m/data.pkl": pkl, "m/constants.pkl": []byte("\x80\x02)."), "m/version": []byte("3\n")} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := parseTorchZip(bytes.NewReader(b.Bytes()), int64(b.Len()), "self.pt")
	if err == nil || !strings.Contains(err.Error(), "nested deeper") || !strings.Contains(err.Error(), "self.pt") {
		t.Errorf("self-referencing module: got %v", err)
	}
	notZip := filepath.Join(t.TempDir(), "old.pt")
	if err := os.WriteFile(notZip, []byte("\x80\x02}q\x00."), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(notZip); err == nil || !strings.Contains(err.Error(), "torch.save(torch.load(") || !strings.Contains(err.Error(), "old.pt") {
		t.Errorf("a .pt that is no zip: got %v", err)
	}
}
