package providers_test

import (
	"fmt"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

// A delivery goes through its source's preset: verify with the source's keys, then normalize.
func Example() {
	preset, _ := providers.Lookup("codivupload")
	key, err := preset.Key("cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f") // at start
	if err != nil {
		panic(err)
	}
	body := []byte(`{"event":"post.retry","id":"evt_6c2a9e84","timestamp":"2026-05-08T15:05:07Z","data":{"post_id":"post_q2w8e4r6","profile_name":"main","platform":"tiktok","scheduled_at":"2026-05-08T15:00:00Z","attempt":2,"next_attempt_at":"2026-05-08T15:10:00Z"}}`)
	h := headers{
		"X-CodivUpload-Event":     []byte("post.retry"),
		"X-CodivUpload-Signature": []byte("1151c6b58d168b29ffde2dbe21c4c23a4f02e0f6e0e1692e34567c06b29ae94f"),
	}

	// codivupload signs its deliveries; a preset of a sender that signs nothing is
	// providers.Unsigned instead, and checks the token that ends the URL.
	if err := preset.(providers.Signed).Verify(h, body, []*providers.Key{key}, time.Now()); err != nil {
		fmt.Println("401:", err)
		return
	}
	var ev event.Event
	if err := preset.Normalize(h, body, &ev); err != nil {
		fmt.Println("quarantine:", err)
		return
	}
	fmt.Println(ev.ID, ev.Type, *ev.PostID, *ev.Attempt, ev.NextAttemptAt.Format(time.RFC3339))
	fmt.Printf("%v\n", key)
	// Output:
	// evt_6c2a9e84 post.retry post_q2w8e4r6 2 2026-05-08T15:10:00Z
	// [redacted]
}

// A preset whose deliveries carry several events splits them: each part is an event with
// its own id, or an element the bridge ignores.
func ExampleSplitter() {
	preset, err := providers.New("meta", providers.Settings{VerifyToken: "my-verify-token"})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"object":"page","entry":[{"id":"1049","time":1767225600,"changes":[` +
		`{"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c1","post_id":"1049_7","message":"Nice!","created_time":1767225600}},` +
		`{"field":"feed","value":{"item":"reaction","verb":"add","post_id":"1049_7"}}]}]}`)
	parts, err := preset.(providers.Splitter).Split(headers{}, body)
	if err != nil {
		panic(err)
	}
	for _, p := range parts {
		if p.Ignored != "" {
			fmt.Println("ignored:", p.Ignored)
			continue
		}
		fmt.Println(p.Event.Type, *p.Event.CommentID, *p.Event.Text, len(p.Event.Raw) < len(body))
	}
	// Output:
	// comment.received c1 Nice! true
	// ignored: meta feed item "reaction" verb "add" is not mapped
}
