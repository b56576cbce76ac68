package bridgetest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/socialbridge/bridge/bridgetest"
)

// Example starts the bridge against a test's Kafka, sends it a signed post.published as
// CodivUpload would, and reads the record the bridge produced.
func Example() {
	ctx := context.Background()
	bridge, err := bridgetest.Run(ctx, []string{"127.0.0.1:9092"},
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
	fmt.Println(ev.Type, *ev.Platform, bridge.Topic(ev.Type))
}
