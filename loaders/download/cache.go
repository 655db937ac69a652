package download

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CacheEnv names the environment variable that overrides the cache root.
const CacheEnv = "GORGOCLIP_CACHE"

// CacheDir returns the root of gorgoclip's download cache: $GORGOCLIP_CACHE when set,
// else os.UserCacheDir()/gorgoclip (~/.cache/gorgoclip on Linux). It does not create it.
func CacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("loaders: download: no cache directory (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(d, "gorgoclip"), nil
}

// ModelDir returns where FetchModel stores repo at revision by default:
// CacheDir()/models/{owner}--{name}, with "@{revision}" appended for revisions other
// than "main" (and "" which means main).
func ModelDir(repo, revision string) (string, error) {
	if err := checkRepo(repo); err != nil {
		return "", err
	}
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	name := strings.ReplaceAll(repo, "/", "--")
	if revision != "" && revision != "main" {
		name += "@" + strings.NewReplacer("/", "_", `\`, "_", "..", "_").Replace(revision)
	}
	return filepath.Join(root, "models", name), nil
}

// DatasetsDir returns CacheDir()/datasets, where FetchImagenette extracts by default.
func DatasetsDir() (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "datasets"), nil
}

// TemplatesPath returns CacheDir()/templates/prompts.md, where FetchTemplates saves
// by default.
func TemplatesPath() (string, error) {
	root, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "templates", "prompts.md"), nil
}
