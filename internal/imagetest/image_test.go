package imagetest_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/imagetest"
	"github.com/socialbridge/bridge/internal/testkit"
)

func docker(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(t, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestImage builds the image from the working tree and checks what its Dockerfile promises:
// the stamped version, a non-root user, and a HEALTHCHECK that works without a shell.
func TestImage(t *testing.T) {
	tag := imagetest.Build(t)
	label := mustDocker(t, "inspect", "--format", `{{index .Config.Labels "org.opencontainers.image.version"}}`, tag)
	if v := mustDocker(t, "run", "--rm", "--network", "none", tag, "version"); v != label || v == "" || v == "(devel)" {
		t.Errorf("bridge version in the image says %q, its label %q", v, label)
	}
	if u := mustDocker(t, "inspect", "--format", "{{.Config.User}}", tag); u != "65532:65532" {
		t.Errorf("image user %q", u)
	}

	name := runServing(t, tag)
	if uid := processUID(t, name); uid != "65532" {
		t.Errorf("the bridge runs as uid %s", uid)
	}
	testkit.Eventually(t, 60*time.Second, "bridge healthcheck to pass", func() bool {
		_, err := docker(t, "exec", name, "/usr/local/bin/bridge", "healthcheck")
		return err == nil
	})
	out, err := docker(t, "exec", name, "/usr/local/bin/bridge", "healthcheck", "--url", "http://127.0.0.1:9/healthz")
	if err == nil || !strings.Contains(out, "healthcheck:") {
		t.Errorf("healthcheck of a closed port: %v %q", err, out)
	}
	testkit.Eventually(t, 120*time.Second, "the container to be healthy", func() bool {
		return mustDocker(t, "inspect", "--format", "{{.State.Health.Status}}", name) == "healthy"
	})
}

// runServing starts the image's default command on a mounted file, with no network and no
// Kafka (--discard-records), and returns the container's name.
func runServing(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "bridge.yaml")
	cfg := "http: {listen: \"127.0.0.1:8080\"}\nkafka: {brokers: [\"127.0.0.1:1\"]}\nsources: [{name: codivupload, provider: codivupload, secrets: [not-a-real-secret]}]\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	name := "bridge-imagetest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { docker(t, "rm", "-f", name) })
	mustDocker(t, "run", "-d", "--name", name, "--network", "none", "-v", path+":/etc/bridge/bridge.yaml:ro",
		tag, "serve", "--config", "/etc/bridge/bridge.yaml", "--discard-records")
	return name
}

// processUID reads the real uid of the container's process from the host's /proc.
func processUID(t *testing.T, name string) string {
	t.Helper()
	pid := mustDocker(t, "inspect", "--format", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("the container's process: %v", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	t.Fatalf("no Uid in /proc/%s/status", pid)
	return ""
}
