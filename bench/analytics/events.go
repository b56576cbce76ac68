package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/socialbridge/bridge/event"
)

// benchEvent returns the i-th event of a live stream: the last two hours, platforms ×
// profiles, post.published 70%, post.failed 15%, post.retry 10%, post.token_expired 5%, with
// a raw payload of a few hundred bytes as providers send.
func benchEvent(rng *rand.Rand, i, platforms, profiles int, now time.Time) event.Event {
	ev := event.Event{
		ID: fmt.Sprintf("evt_bench_%d", i), Source: "codivupload", Provider: "codivupload",
		OccurredAt: now.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour)))).Truncate(time.Millisecond),
	}
	ev.ReceivedAt = ev.OccurredAt.Add(300 * time.Millisecond)
	platform := fmt.Sprintf("platform-%d", rng.IntN(platforms))
	profile := fmt.Sprintf("profile-%03d", rng.IntN(profiles))
	post := fmt.Sprintf("post_%08d", i)
	ev.Platform, ev.ProfileName, ev.PostID = &platform, &profile, &post
	switch r := rng.IntN(100); {
	case r < 70:
		ev.Type = event.PostPublished
		scheduled := ev.OccurredAt.Add(-time.Duration(math.Exp(rng.NormFloat64()*1.5+9)) * time.Millisecond)
		ev.ScheduledAt, ev.PublishedAt = &scheduled, &ev.OccurredAt
	case r < 85:
		ev.Type = event.PostFailed
	case r < 95:
		ev.Type = event.PostRetry
	default:
		ev.Type = event.PostTokenExpired
	}
	ev.Raw = fmt.Appendf(nil, `{"event":%q,"id":%q,"timestamp":%q,"data":{"post_id":%q,"profile_name":%q,"platform":%q,`+
		`"platform_post_id":"17891234567890","platform_post_url":"https://example.com/p/Cabc123/","scheduled_at":"2026-05-08T14:00:00Z",`+
		`"published_at":"2026-05-08T14:00:42Z","caption":"A post with a caption of a realistic length, tags and a link"}}`,
		ev.Type, ev.ID, ev.OccurredAt.Format(time.RFC3339), post, profile, platform)
	return ev
}
