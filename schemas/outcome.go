package schemas

import (
	"fmt"
	"time"
)

// Outcome is the part of a post event that a consumer counting post outcomes reads (the
// analytics consumer): its type, when it occurred, for which platform and profile, and when
// the post was due and went out. Fields mean what event.Event's of the same names do.
type Outcome struct {
	Type        string     `avro:"event_type"`
	OccurredAt  time.Time  `avro:"occurred_at"`
	ProfileName *string    `avro:"profile_name"`
	Platform    *string    `avro:"platform"`
	ScheduledAt *time.Time `avro:"scheduled_at"`
	PublishedAt *time.Time `avro:"published_at"`
}

// DecodeOutcome is Decode for a reader that needs only an Outcome: it takes the same
// values and fails alike, and it skips every other field (ids, texts, the raw payload)
// without copying it, which makes it several times quicker. On error *o is zero.
func (r *Reader) DecodeOutcome(value []byte, o *Outcome) error {
	*o = Outcome{}
	t, s, body, err := r.unframe(value)
	if err != nil {
		return err
	}
	if err := readBody(s, body, o); err != nil {
		*o = Outcome{}
		return fmt.Errorf("%w: %s: %w", ErrMalformed, t, err)
	}
	if o.Type != t {
		*o = Outcome{}
		return fmt.Errorf("%w: %s record says event_type %q", ErrMalformed, t, o.Type)
	}
	return nil
}
