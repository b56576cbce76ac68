package bridgetest_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/socialbridge/bridge/bridgetest"
)

// Example starts the bridge against a test's Kafka, sends it a signed post.published as
// CodivUpload would, and reads the record the bridge produced.
func Example() {
	ctx := context.Background()
	// The Kafka your tests use, and the bridge's image (`make image` builds the default).
	brokers := strings.Split(cmp.Or(os.Getenv("KAFKA_BROKERS"), "127.0.0.1:9092"), ",")
	image := cmp.Or(os.Getenv("BRIDGE_IMAGE"), bridgetest.DefaultImage)
	bridge, err := bridgetest.Run(ctx, brokers,
		bridgetest.Image(image),
		bridgetest.TopicPrefix("it."),
		bridgetest.Source("codivupload", "codivupload", "a-test-secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer bridge.Terminate(ctx)

	// Point the code under test at bridge.WebhookURL("codivupload"), or send a sample:
	answer, err := bridge.Send(ctx, "post.published")
	if err != nil || answer.Status != "accepted" {
		log.Fatal(answer.Code, err)
	}
	ev, err := bridge.WaitForEvent(ctx, "post.published", answer.EventID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Type, ev.ID == answer.EventID, bridge.Topic(ev.Type))
	// Output: post.published true it.post.published
}
