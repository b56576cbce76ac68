package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/internal/testkit"
)

// envChildArgs, when set, makes the test binary run `bridge` with the variable's arguments
// (a JSON array) instead of the tests: tests start such children to see the bridge work
// across processes, as it is deployed, and to SIGKILL it.
const envChildArgs = "BRIDGE_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChildArgs); spec != "" {
		var args []string
		if err := json.Unmarshal([]byte(spec), &args); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Args = append([]string{"bridge"}, args...)
		main() // exits on failure
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild starts `bridge args…` as a process of its own (this test binary again), with env
// added to the test's environment. Its output is in Out; it is killed when the test ends,
// unless Stop (SIGTERM) or Kill ended it first.
func startChild(t *testing.T, env []string, args ...string) *testkit.Proc {
	t.Helper()
	spec, _ := json.Marshal(args)
	return testkit.Reexec(t, "bridge "+strings.Join(args, " "), append(env, envChildArgs+"="+string(spec))...)
}
