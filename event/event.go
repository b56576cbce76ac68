// Package event holds the canonical, provider-independent form of a webhook delivery:
// the one shape every provider preset normalizes into and every Avro schema encodes.
package event

import "time"

// The canonical event types. Each has a topic ({prefix}{type}) and a schema in schemas/.
const (
	PostPublished    = "post.published"
	PostFailed       = "post.failed"
	PostTokenExpired = "post.token_expired"
	PostRetry        = "post.retry"
	CommentReceived  = "comment.received"
	FollowerGained   = "follower.gained"
	FollowerLost     = "follower.lost"
)

// Types lists every canonical event type, in a stable order.
var Types = []string{
	PostPublished, PostFailed, PostTokenExpired, PostRetry,
	CommentReceived, FollowerGained, FollowerLost,
}

// Known reports whether t is a canonical event type.
func Known(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Event is one normalized webhook delivery. The envelope fields are always set; the typed
// fields are pointers because providers send them only sometimes, and a schema holds only
// the typed fields of its own event type (the Avro codec ignores the others).
// Raw is the request body verbatim, so nothing a provider sent is lost.
type Event struct {
	ID         string    `avro:"event_id"`
	Type       string    `avro:"event_type"`
	Source     string    `avro:"source"`
	Provider   string    `avro:"provider"`
	OccurredAt time.Time `avro:"occurred_at"`
	ReceivedAt time.Time `avro:"received_at"`

	// post.published, post.failed, post.token_expired, post.retry
	PostID          *string    `avro:"post_id"`
	ProfileName     *string    `avro:"profile_name"`
	Platform        *string    `avro:"platform"`
	PlatformPostID  *string    `avro:"platform_post_id"`
	PlatformPostURL *string    `avro:"platform_post_url"`
	ScheduledAt     *time.Time `avro:"scheduled_at"`
	PublishedAt     *time.Time `avro:"published_at"`
	ErrorCode       *string    `avro:"error_code"`
	ErrorMessage    *string    `avro:"error_message"`
	Retryable       *bool      `avro:"retryable"`
	Attempt         *int32     `avro:"attempt"`
	NextAttemptAt   *time.Time `avro:"next_attempt_at"`
	ReconnectURL    *string    `avro:"reconnect_url"`

	// comment.received (also uses PostID, ProfileName, Platform, PlatformPostID)
	CommentID  *string `avro:"comment_id"`
	AuthorID   *string `avro:"author_id"`
	AuthorName *string `avro:"author_name"`
	Text       *string `avro:"text"`

	// follower.gained, follower.lost (also use ProfileName, Platform)
	AccountID    *string `avro:"account_id"`
	FollowerID   *string `avro:"follower_id"`
	FollowerName *string `avro:"follower_name"`

	Raw []byte `avro:"raw_payload"`
}
