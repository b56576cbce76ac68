package schemas_test

import (
	"fmt"
	"time"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

func ExampleNewSingleObject() {
	codec, err := schemas.NewSingleObject()
	if err != nil {
		panic(err)
	}
	url := "https://www.instagram.com/p/Cabc123/"
	in := &event.Event{
		ID:              "evt_1",
		Type:            event.PostPublished,
		Source:          "codivupload",
		Provider:        "codivupload",
		OccurredAt:      time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		ReceivedAt:      time.Date(2025, 3, 14, 9, 26, 54, 0, time.UTC),
		PlatformPostURL: &url,
		Raw:             []byte(`{"id":"evt_1"}`),
	}
	value, err := codec.Encode(nil, in) // the Kafka record value
	if err != nil {
		panic(err)
	}
	s, _ := schemas.ForType(in.Type)
	fmt.Printf("magic % x, fingerprint of %s: %t\n", value[:2], s.Name, [8]byte(value[2:10]) == s.Fingerprint)

	var out event.Event
	if err := codec.Decode(value, &out); err != nil {
		panic(err)
	}
	fmt.Println(out.Type, *out.PlatformPostURL, out.PostID == nil, out.OccurredAt, string(out.Raw))
	// Output:
	// magic c3 01, fingerprint of social.events.PostPublished: true
	// post.published https://www.instagram.com/p/Cabc123/ true 2025-03-14 09:26:53 +0000 UTC {"id":"evt_1"}
}
