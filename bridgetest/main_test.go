package bridgetest_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/internal/imagetest"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
)

// exampleTopics is the topic prefix of Example, deleted from the test broker after the run.
const exampleTopics = "it."

// TestMain points Example at the test broker and at the image built from the working tree,
// through the variables it reads as a user's test would. Where either is missing it skips
// Example on a developer's machine, as the tests skip, and fails the run under CI.
func TestMain(m *testing.M) {
	flag.Parse()
	if flag.Lookup("test.list").Value.String() != "" {
		os.Exit(m.Run()) // listing runs nothing: no image to build
	}
	brokers := os.Getenv(kafkatest.EnvBrokers)
	why := ""
	switch {
	case os.Getenv(testenv.Docker) == "":
		why = testenv.Docker + " is not set"
	case brokers == "":
		why = kafkatest.EnvBrokers + " is not set"
	}
	if why == "" {
		image, err := imagetest.BuildOnce()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv("BRIDGE_IMAGE", image)
		os.Setenv("KAFKA_BROKERS", brokers)
	} else if os.Getenv("CI") != "" {
		fmt.Fprintf(os.Stderr, "bridgetest: %s under CI: run the tests through scripts/test.sh (make test)\n", why)
		os.Exit(1)
	} else {
		skipExample(why)
	}
	code := m.Run()
	if why == "" {
		_ = kafkatest.DeletePrefixed(strings.Split(brokers, ","), exampleTopics)
	}
	os.Exit(code)
}

// skipExample adds Example to -test.skip, as a test would skip itself.
func skipExample(why string) {
	skip := "^Example$"
	if prev := flag.Lookup("test.skip").Value.String(); prev != "" {
		skip = prev + "|" + skip
	}
	_ = flag.Set("test.skip", skip)
	fmt.Fprintf(os.Stderr, "bridgetest: Example skipped: %s (make test provides it)\n", why)
}
