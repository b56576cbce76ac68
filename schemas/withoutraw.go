package schemas

import (
	"fmt"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/socialbridge/bridge/event"
)

// DecodeWithoutRaw is Decode for a reader that needs every field but the raw payload (the
// alerts and retries groups): it takes the same values and fails alike, and it skips
// raw_payload without copying it, leaving ev.Raw nil. On error *ev is zero.
func (r *Reader) DecodeWithoutRaw(value []byte, ev *event.Event) error {
	if err := zero(ev); err != nil {
		return err
	}
	t, s, body, err := r.unframe(value)
	if err != nil {
		return err
	}
	if err := readBody(s, body, (*withoutRaw)(ev)); err != nil {
		*ev = event.Event{}
		return fmt.Errorf("%w: %s: %w", ErrMalformed, t, err)
	}
	if ev.Type != t {
		*ev = event.Event{}
		return fmt.Errorf("%w: %s record says event_type %q", ErrMalformed, t, ev.Type)
	}
	return nil
}

// unframe returns the type, the schema to read with and the Avro body of a value in either
// framing.
func (r *Reader) unframe(value []byte) (string, avro.Schema, []byte, error) {
	switch {
	case len(value) == 0 || value[0] != 0:
		return r.single.unframe(value)
	case r.registry == nil:
		return "", nil, nil, errNoRegistry
	}
	return r.registry.unframe(value)
}

// withoutRaw is event.Event under other tags: Raw's names no schema field, so the codec
// skips raw_payload. A *event.Event converts to a *withoutRaw only while both have the
// same fields, of the same types, in the same order: a field added to one and not the other
// stops the build.
type withoutRaw struct {
	ID         string    `avro:"event_id"`
	Type       string    `avro:"event_type"`
	Source     string    `avro:"source"`
	Provider   string    `avro:"provider"`
	OccurredAt time.Time `avro:"occurred_at"`
	ReceivedAt time.Time `avro:"received_at"`

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

	CommentID  *string `avro:"comment_id"`
	AuthorID   *string `avro:"author_id"`
	AuthorName *string `avro:"author_name"`
	Text       *string `avro:"text"`

	AccountID    *string `avro:"account_id"`
	FollowerID   *string `avro:"follower_id"`
	FollowerName *string `avro:"follower_name"`

	Raw []byte `avro:"-"`
}
