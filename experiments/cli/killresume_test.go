package cli

// Crash safety of the resumable parts of the command, tested on the real binary: a
// process killed with SIGKILL (no deferred cleanup, no signal handler) must leave
// only complete files behind, and the next run must reuse them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorgoclip/gorgoclip/internal/testfix"
	"github.com/gorgoclip/gorgoclip/loaders/npy"
	"github.com/gorgoclip/gorgoclip/loaders/tokenizer"
)

var (
	krOnce sync.Once
	krBin  string
	krErr  error
	krDir  string
)

// krBinary builds bin/gorgoclip once per test binary into a temporary directory.
func krBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the gorgoclip binary; skipped under -short")
	}
	krOnce.Do(func() {
		krDir, krErr = os.MkdirTemp("", "gorgoclip-killresume-")
		if krErr != nil {
			return
		}
		krBin = filepath.Join(krDir, "gorgoclip")
		cmd := exec.Command("go", "build", "-o", krBin, "github.com/gorgoclip/gorgoclip/experiments/cmd/gorgoclip")
		if out, err := cmd.CombinedOutput(); err != nil {
			krErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if krErr != nil {
		t.Fatal(krErr)
	}
	return krBin
}

func TestMain(m *testing.M) {
	// The commands under test find OpenAI's vocabulary in the fixtures' copy (a user
	// runs gorgoclip fetch vocab), unless the environment names one already.
	if os.Getenv(tokenizer.VocabEnv) == "" && testfix.SharedDir() != "" {
		os.Setenv(tokenizer.VocabEnv, filepath.Join(testfix.SharedDir(), "clip", tokenizer.OpenAIVocabFile))
	}
	code := m.Run()
	if krDir != "" {
		os.RemoveAll(krDir)
	}
	os.Exit(code)
}

// krWaitFor polls cond every few milliseconds until it holds, the process exits or
// the deadline passes; it reports whether cond held.
func krWaitFor(t *testing.T, exited <-chan struct{}, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-exited:
			return cond()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

// krStart starts bin with args and env, returning the command, its stderr buffer
// and a channel closed when it has exited (cmd.Wait done).
func krStart(t *testing.T, bin string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, chan struct{}) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return cmd, &stderr, exited
}

// krKill sends SIGKILL and waits for the process to be gone.
func krKill(t *testing.T, cmd *exec.Cmd, exited chan struct{}) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	<-exited
}

var krShardRE = regexp.MustCompile(`^(shard-\d{6}|tar-[A-Za-z0-9._-]+)\.(npy|json)$`)

// krCheckCache verifies that every file in the cache directories is complete: key.json
// and shard records parse, every shard's features read as float32 [rows,dim] with rows
// the shard size or fewer; only dot-files (atomic-write temporaries) are allowed
// besides. It returns the number of complete shards: records with their features.
func krCheckCache(t *testing.T, cache string, dim int) int {
	t.Helper()
	dirs, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	shards := 0
	for _, d := range dirs {
		if strings.HasPrefix(d.Name(), ".") {
			continue
		}
		if !d.IsDir() {
			t.Errorf("cache: unexpected file %s", d.Name())
			continue
		}
		files, err := os.ReadDir(filepath.Join(cache, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			p := filepath.Join(cache, d.Name(), f.Name())
			switch name := f.Name(); {
			case strings.HasPrefix(name, "."):
				// a temporary of an atomic write that was in progress
			case name == "key.json" || (krShardRE.MatchString(name) && strings.HasSuffix(name, ".json")):
				b, err := os.ReadFile(p)
				if err == nil && !json.Valid(b) {
					err = fmt.Errorf("not valid JSON: %q", b)
				}
				if err != nil {
					t.Errorf("cache: %s: %v", p, err)
				}
				if name == "key.json" {
					continue
				}
				if _, err := os.Stat(strings.TrimSuffix(p, ".json") + ".npy"); err != nil {
					t.Errorf("cache: a record without its features: %v", err)
					continue
				}
				shards++
			case krShardRE.MatchString(name):
				a, err := npy.ReadFloat32(p)
				if err != nil {
					t.Errorf("cache: partially written shard: %v", err)
					continue
				}
				if len(a.Shape) != 2 || a.Shape[1] != dim || a.Shape[0] < 1 || a.Shape[0] > 256 {
					t.Errorf("cache: %s has shape %v, want [n<=256, %d]", p, a.Shape, dim)
				}
			default:
				t.Errorf("cache: unexpected file %s", p)
			}
		}
	}
	return shards
}

var krFeaturesRE = regexp.MustCompile(`features (\S+): (\d+) shards read from the cache, (\d+) computed`)

// krCacheCounts sums the "N shards read from the cache, M computed" lines of stderr.
func krCacheCounts(t *testing.T, stderr string) (read, computed, lines int) {
	t.Helper()
	for _, m := range krFeaturesRE.FindAllStringSubmatch(stderr, -1) {
		r, _ := strconv.Atoi(m[2])
		c, _ := strconv.Atoi(m[3])
		read += r
		computed += c
		lines++
	}
	return
}

// krMetrics is what must not depend on whether a run was interrupted.
type krMetrics struct {
	ZeroShot []struct {
		Prompts string         `json:"prompts"`
		Metrics map[string]any `json:"metrics"`
		Test    int            `json:"n_test"`
		Conf    [][]int        `json:"confusion_matrix"`
	} `json:"zeroshot"`
	Probes []struct {
		Shots   int            `json:"shots"`
		Seed    int            `json:"seed"`
		C       float64        `json:"C"`
		Metrics map[string]any `json:"metrics"`
		Conf    [][]int        `json:"confusion_matrix"`
	} `json:"linear_probe"`
	Summary any `json:"summary"`
}

func krLoadMetrics(t *testing.T, path string) (krMetrics, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m krMetrics
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(m.ZeroShot) == 0 || len(m.Probes) == 0 {
		t.Fatalf("%s lacks zero-shot or probe results:\n%s", path, b)
	}
	return m, b
}

func TestKillResumeFeatureCache(t *testing.T) {
	bin := krBinary(t)
	weights := testfix.Shared(t, "fixtures/clip-tiny-a/openai")
	vocab := testfix.Shared(t, "clip/bpe_simple_vocab_16e6.txt.gz")
	fm := testfix.FashionMNIST(t)
	const dim = 32 // clip-tiny-a's embed_dim
	dir := t.TempDir()
	args := func(run string) []string {
		return []string{"compare", "--weights", weights, "--vocab", vocab, "--dataset", "fashion-mnist:" + fm,
			"--train-limit", "3000", "--test-limit", "1000", "--shots", "1", "--seeds", "1", "--no-full", "--C", "1",
			"--batch", "32", "--cache", filepath.Join(dir, run, "cache"), "--out", filepath.Join(dir, run, "out")}
	}
	cache := filepath.Join(dir, "killed", "cache")
	countShards := func() int {
		m, _ := filepath.Glob(filepath.Join(cache, "*", "shard-*.json"))
		return len(m)
	}

	// 1000 test images make 4 shards of 256, computed first: kill once the training
	// split has begun, so that one split is complete and the other half done.
	cmd, stderr, exited := krStart(t, bin, nil, args("killed")...)
	if !krWaitFor(t, exited, 90*time.Second, func() bool { return countShards() >= 5 }) {
		select {
		case <-exited:
			t.Fatalf("compare exited (%v) before writing 5 shards:\n%s", cmd.ProcessState, stderr)
		default:
			t.Fatalf("no 5 shards in %s after 90s:\n%s", cache, stderr)
		}
	}
	krKill(t, cmd, exited)
	if _, err := os.Stat(filepath.Join(dir, "killed", "out", "results.json")); err == nil {
		t.Fatalf("the run finished before it was killed; nothing was tested")
	}
	atKill := krCheckCache(t, cache, dim)
	if atKill < 5 || atKill >= 16 {
		t.Fatalf("%d shards after the kill, want 5..15 of 16", atKill)
	}

	t.Logf("killed after %d of 16 shards", atKill)

	cmd, stderr, exited = krStart(t, bin, nil, args("killed")...)
	<-exited
	if !cmd.ProcessState.Success() {
		t.Fatalf("resumed compare: %v:\n%s", cmd.ProcessState, stderr)
	}
	read, computed, lines := krCacheCounts(t, stderr.String())
	if lines != 2 || read < atKill || read+computed != 16 || computed == 0 {
		t.Errorf("resumed run: %d shards read from the cache and %d computed (in %d lines), want >= %d read of 16:\n%s",
			read, computed, lines, atKill, stderr)
	}
	if n := krCheckCache(t, cache, dim); n != 16 {
		t.Errorf("%d shards after the resumed run, want 16", n)
	}

	cmd, fresh, exited := krStart(t, bin, nil, args("fresh")...)
	<-exited
	if !cmd.ProcessState.Success() {
		t.Fatalf("uninterrupted compare: %v:\n%s", cmd.ProcessState, fresh)
	}
	if read, computed, _ := krCacheCounts(t, fresh.String()); read != 0 || computed != 16 {
		t.Errorf("fresh cache: %d read, %d computed; want 0 and 16", read, computed)
	}
	got, gotRaw := krLoadMetrics(t, filepath.Join(dir, "killed", "out", "results.json"))
	want, wantRaw := krLoadMetrics(t, filepath.Join(dir, "fresh", "out", "results.json"))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results of the killed-and-resumed run differ from an uninterrupted run's:\n%s\nwant:\n%s", gotRaw, wantRaw)
	}
}

// krHub is a fake Hugging Face hub serving one repository whose weights file trickles
// out in 64 KB chunks; a request without Range stalls after stallAt bytes until the
// client goes away, so that the test can kill the client mid-file deterministically.
type krHub struct {
	repo    string
	weights []byte
	config  []byte
	stallAt int

	mu     sync.Mutex
	ranges []string // Range header of each weights request ("" for none)
}

func (h *krHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sum := sha256.Sum256(h.weights)
	switch r.URL.Path {
	case "/api/models/" + h.repo + "/revision/main":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": h.repo, "sha": "0123456789abcdef0123456789abcdef01234567",
			"siblings": []map[string]any{
				{"rfilename": "config.json", "size": len(h.config)},
				{"rfilename": "model.safetensors", "size": len(h.weights),
					"lfs": map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(h.weights)}},
				{"rfilename": "README.md", "size": 3},
			},
		})
	case "/" + h.repo + "/resolve/main/config.json":
		w.Write(h.config)
	case "/" + h.repo + "/resolve/main/model.safetensors":
		h.serveWeights(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *krHub) serveWeights(w http.ResponseWriter, r *http.Request) {
	rng := r.Header.Get("Range")
	h.mu.Lock()
	h.ranges = append(h.ranges, rng)
	h.mu.Unlock()
	start := 0
	size := len(h.weights)
	w.Header().Set("ETag", `"krhub-v1"`)
	w.Header().Set("Accept-Ranges", "bytes")
	if rng != "" {
		s, ok := strings.CutPrefix(rng, "bytes=")
		s, ok2 := strings.CutSuffix(s, "-")
		n, err := strconv.Atoi(s)
		if !ok || !ok2 || err != nil || n < 0 || n >= size {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, size-1, size))
		w.Header().Set("Content-Length", strconv.Itoa(size-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
	}
	fl, _ := w.(http.Flusher)
	const chunk = 64 << 10
	for off := start; off < size; off += chunk {
		if rng == "" && off >= h.stallAt {
			// Hold the connection open until the client is killed.
			select {
			case <-r.Context().Done():
			case <-time.After(60 * time.Second):
			}
			return
		}
		if _, err := w.Write(h.weights[off:min(off+chunk, size)]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestKillResumeDownload(t *testing.T) {
	bin := krBinary(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	hub := &krHub{repo: "org/name", config: []byte(`{"projection_dim": 32}` + "\n"), weights: make([]byte, 4<<20+12345), stallAt: 3 << 19}
	for i := range hub.weights {
		hub.weights[i] = byte(rnd.Uint32())
	}
	copy(hub.weights, "\x02\x00\x00\x00\x00\x00\x00\x00{}") // starts as safetensors does: fetch checks
	ts := httptest.NewServer(hub)
	t.Cleanup(ts.Close)
	cacheRoot := t.TempDir()
	env := []string{"HF_ENDPOINT=" + ts.URL, "GORGOCLIP_CACHE=" + cacheRoot, "HF_TOKEN=", "HUGGING_FACE_HUB_TOKEN="}
	dest := filepath.Join(cacheRoot, "models", "org--name", "model.safetensors")
	partialSize := func() int64 {
		fi, err := os.Stat(dest + ".partial")
		if err != nil {
			return 0
		}
		return fi.Size()
	}

	cmd, stderr, exited := krStart(t, bin, env, "fetch", "model", "org/name")
	if !krWaitFor(t, exited, 30*time.Second, func() bool { return partialSize() > 1<<20 }) {
		t.Fatalf("no partial file over 1 MB (status %v):\n%s", cmd.ProcessState, stderr)
	}
	krKill(t, cmd, exited)
	if _, err := os.Stat(dest); err == nil {
		t.Fatalf("%s exists after the kill: the download was not interrupted", dest)
	}
	kept := partialSize()
	if kept <= 1<<20 || kept >= int64(len(hub.weights)) {
		t.Fatalf("partial file holds %d bytes after the kill, want between 1 MB and %d", kept, len(hub.weights))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	re := exec.CommandContext(ctx, bin, "fetch", "model", "org/name")
	re.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	re.Stdout, re.Stderr = &out, &errOut
	if err := re.Run(); err != nil {
		t.Fatalf("resumed fetch: %v:\n%s", err, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != filepath.Dir(dest) {
		t.Errorf("fetch printed %q, want %q", got, filepath.Dir(dest))
	}

	hub.mu.Lock()
	ranges := append([]string(nil), hub.ranges...)
	hub.mu.Unlock()
	t.Logf("killed with %d of %d bytes in the partial file; weights requests: %q", kept, len(hub.weights), ranges)
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=%d-", kept) {
		t.Errorf("weights requests had Range headers %q, want [\"\" \"bytes=%d-\"]", ranges, kept)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	gotSum, wantSum := sha256.Sum256(got), sha256.Sum256(hub.weights)
	if !bytes.Equal(got, hub.weights) || gotSum != wantSum {
		t.Errorf("downloaded %d bytes with sha256 %x, want %d bytes with %x", len(got), gotSum, len(hub.weights), wantSum)
	}
	if _, err := os.Stat(dest + ".partial"); err == nil {
		t.Errorf("%s.partial left behind", dest)
	}
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(dest), "config.json")); err != nil || !bytes.Equal(b, hub.config) {
		t.Errorf("config.json: %q, %v", b, err)
	}
}
