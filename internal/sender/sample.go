package sender

import (
	"fmt"
	"time"

	"github.com/socialbridge/bridge/event"
)

// SampleEvent returns a realistic canonical event of type t with id, happening at at. Its
// post, profile and platform are picked by n, so that a run of samples spreads over a few
// profiles and platforms the way real traffic does; the same arguments give the same event.
// A preset's Simulator renders it as the provider's delivery.
func SampleEvent(t, id string, at time.Time, n int) *event.Event {
	platforms := []string{"instagram", "tiktok", "linkedin", "youtube", "facebook", "x"}
	profiles := []string{"main", "brand_eu", "brand_us", "support"}
	platform, profile := platforms[n%len(platforms)], profiles[(n/len(platforms))%len(profiles)]
	postID := fmt.Sprintf("post_%08x", uint32(n)*2654435761)
	at = at.UTC().Truncate(time.Second)
	scheduled := at.Add(-time.Duration(30+n%90) * time.Second)
	ev := &event.Event{ID: id, Type: t, OccurredAt: at, PostID: &postID, ProfileName: &profile, Platform: &platform}
	switch t {
	case event.PostPublished:
		ppid := fmt.Sprintf("%d", 17890000000000+n)
		url := fmt.Sprintf("https://%s.example/p/%s", platform, ppid)
		ev.ScheduledAt, ev.PublishedAt, ev.PlatformPostID, ev.PlatformPostURL = &scheduled, &at, &ppid, &url
	case event.PostFailed:
		code, msg, retryable, attempt := failureSample(n)
		ev.ScheduledAt, ev.ErrorCode, ev.ErrorMessage, ev.Retryable, ev.Attempt = &scheduled, &code, &msg, &retryable, &attempt
	case event.PostTokenExpired:
		url := fmt.Sprintf("https://app.example/profiles/%s/reconnect/%s", profile, platform)
		ev.ScheduledAt, ev.ReconnectURL = &scheduled, &url
	case event.PostRetry:
		attempt, next := int32(2+n%3), at.Add(5*time.Minute)
		ev.ScheduledAt, ev.Attempt, ev.NextAttemptAt = &scheduled, &attempt, &next
	case event.CommentReceived:
		cid, author, name, text := fmt.Sprintf("c_%d", n), fmt.Sprintf("u_%d", 1000+n%50), fmt.Sprintf("fan%d", n%50), "Love this post!"
		ev.CommentID, ev.AuthorID, ev.AuthorName, ev.Text = &cid, &author, &name, &text
	case event.FollowerGained, event.FollowerLost:
		acct, fid, fname := "acct_"+profile, fmt.Sprintf("f_%d", 5000+n), fmt.Sprintf("follower%d", n)
		ev.PostID, ev.AccountID, ev.FollowerID, ev.FollowerName = nil, &acct, &fid, &fname
	}
	return ev
}

func failureSample(n int) (code, msg string, retryable bool, attempt int32) {
	switch n % 3 {
	case 0:
		return "rate_limited", "rate limit reached, try again later", true, 1
	case 1:
		return "platform_unavailable", "the platform answered 503", true, 1
	}
	return "invalid_media", "the video's aspect ratio is not supported", false, 1
}
