// Package imagetest builds the bridge's container image from the working tree for tests,
// with scripts/image.sh (what `make image` runs), once per test binary. Import it only from
// _test.go files.
package imagetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/socialbridge/bridge/internal/testenv"
)

// Tag is the image the tests build and run; `make image` builds another tag.
const Tag = "socialbridge/bridge:test"

var (
	once     sync.Once
	buildErr error
)

// Build builds Tag from the working tree unless this test binary already did, and returns
// it. It needs the Docker engine (testenv.Docker).
func Build(t testing.TB) string {
	t.Helper()
	testenv.Require(t, testenv.Docker)
	if _, err := BuildOnce(); err != nil {
		t.Fatal(err)
	}
	return Tag
}

// BuildOnce is Build for a TestMain, which has no test to fail or skip: it builds Tag unless
// this test binary already did, and returns it or why it could not.
func BuildOnce() (string, error) {
	once.Do(func() { buildErr = build() })
	return Tag, buildErr
}

func build() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(root, "scripts", "image.sh"), Tag)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("imagetest: scripts/image.sh: %v\n%s", err, out)
	}
	return nil
}

// repoRoot is the nearest folder above the working directory that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("imagetest: no go.mod above the working directory")
		}
		dir = parent
	}
}
