package kafkatest_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestPrefixDeletedAtCleanup: the topics a test made under its prefix on the shared broker
// are gone once the test has ended; another prefix's are not touched.
func TestPrefixDeletedAtCleanup(t *testing.T) {
	seeds := kafkatest.Brokers(t)
	if !kafkatest.Real() {
		t.Skip("kfake goes with its test; the cleanup is for the shared broker")
	}
	kept := kafkatest.Prefix(t) + "kept"
	createTopic(t, seeds, kept)
	var gone string
	t.Run("inner", func(t *testing.T) {
		gone = kafkatest.Prefix(t) + "gone"
		createTopic(t, seeds, gone)
	})
	// The broker deletes a topic in the background: wait until the metadata drops it.
	adm := kadm.NewClient(newClient(t, seeds))
	deadline := time.Now().Add(time.Minute)
	for {
		listed, err := adm.ListTopics(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		names := listed.Names()
		if !slices.Contains(names, kept) {
			t.Fatalf("%s, of the test still running, was deleted", kept)
		}
		if !slices.Contains(names, gone) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still there a minute after its test ended", gone)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// envChildBrokers marks the child process of TestBrokersRefusesKfakeUnderCI.
const envChildBrokers = "KAFKATEST_CHILD_BROKERS"

// TestBrokersRefusesKfakeUnderCI runs a test that asks for Brokers under CI without
// BRIDGE_TEST_KAFKA: it fails, naming the variable, instead of running against kfake.
func TestBrokersRefusesKfakeUnderCI(t *testing.T) {
	if os.Getenv(envChildBrokers) != "" {
		kafkatest.Brokers(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokersRefusesKfakeUnderCI$", "-test.count=1")
	cmd.Env = append(withoutEnv(os.Environ(), kafkatest.EnvBrokers), envChildBrokers+"=1", "CI=true")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), kafkatest.EnvBrokers+" is not set under CI") {
		t.Fatalf("Brokers under CI without %s: %v\n%s", kafkatest.EnvBrokers, err, out)
	}
}

func withoutEnv(env []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
}
