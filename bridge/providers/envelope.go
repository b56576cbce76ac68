package providers

import (
	"time"
	"unicode/utf8"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/event"
)

// envelope is the body shape the presets share:
// {"<type field>": …, "id": …, "timestamp": …, "data": {…canonical field names…}}.
// Its fields hold raw JSON values; "" is a member that is absent or null.
type envelope struct {
	typ, id, timestamp, data string
	fields                   *fields // data's members, read with the body when data is an object
}

// readEnvelope reads body, whose event type is in the member typeField. It reads the whole
// body, checking it, before it returns: a body that is not strict JSON fails as malformed,
// whatever else is wrong with it.
func readEnvelope(body []byte, typeField string) (envelope, error) {
	obj, err := parseObject(body)
	if err != nil {
		return envelope{}, err
	}
	defer obj.close()
	var env envelope
	for {
		name, ok := obj.name()
		if !ok {
			return env, obj.err
		}
		if name == "data" {
			if data, ok := obj.enter(); ok {
				if env.fields = readFields(&data); data.err != nil {
					return envelope{}, data.err
				}
				env.data = data.text()
				continue
			}
		}
		value, ok := obj.value()
		if !ok {
			return envelope{}, obj.err
		}
		if value == "null" {
			value = ""
		}
		switch name {
		case typeField:
			env.typ = value
		case "id":
			env.id = value
		case "timestamp":
			env.timestamp = value
		case "data":
			env.data = value
		}
	}
}

// eventID returns the body's id, which must be a non-empty string.
func (env envelope) eventID() (string, error) {
	if env.id != "" {
		if id, ok := decodeString(env.id); ok && id != "" {
			return id, nil
		}
	}
	return "", failure.New(failure.Unnormalizable, "missing event id")
}

// headerID returns the event id carried in the header name, which must be there.
func headerID(h Headers, name string) (string, error) {
	if len(h.Peek(name)) == 0 {
		return "", failure.New(failure.Unnormalizable, "missing event id")
	}
	return headerValue(h, name, "event id")
}

// headerValue returns what (an event id, a type) from the header name: a copy (servers reuse
// their header buffers) of a value that must be UTF-8, since it becomes an Avro string and,
// for an id, the dedup key. Invalid UTF-8 is refused rather than repaired: repaired ids
// collide.
func headerValue(h Headers, name, what string) (string, error) {
	v := h.Peek(name)
	if !utf8.Valid(v) {
		return "", failure.New(failure.Unnormalizable, "%s in %s is not UTF-8: %s", what, name, quote(string(v)))
	}
	return string(v), nil
}

// eventType returns the body's event type, "" if it has none.
func (env envelope) eventType(typeField string) (string, error) {
	if env.typ == "" {
		return "", nil
	}
	return decodeField("", typeField, env.typ, asString)
}

// fill sets ev's OccurredAt and typed fields from the body's timestamp and data.
func (env envelope) fill(ev *event.Event) error {
	if env.timestamp != "" {
		t, err := decodeField("", "timestamp", env.timestamp, asTime)
		if err != nil {
			return err
		}
		ev.OccurredAt = t
	}
	switch {
	case env.fields != nil:
		return env.fields.fill(ev)
	case env.data != "":
		return failure.New(failure.Unnormalizable, "field \"data\": want an object, got %s", describe(env.data))
	}
	return nil
}

// canonical returns the canonical type t names, as the constant of package event.
func canonical(t string) (string, bool) {
	for _, k := range event.Types {
		if k == t {
			return k, true
		}
	}
	return "", false
}

// canonicalType is canonical for a type that must be present and known.
func canonicalType(t string) (string, error) {
	if t == "" {
		return "", failure.New(failure.Unnormalizable, "missing event type")
	}
	if k, ok := canonical(t); ok {
		return k, nil
	}
	return "", failure.New(failure.Unnormalizable, "unknown event type %s", quote(t))
}

// reset clears what Normalize fills and keeps what its caller sets, so an Event can be reused.
func reset(ev *event.Event) {
	*ev = event.Event{Source: ev.Source, Provider: ev.Provider, ReceivedAt: ev.ReceivedAt, Raw: ev.Raw}
}

// fields holds the typed values of one delivery. The Event's pointer fields point into it,
// so a delivery's data costs one allocation however many fields it has.
type fields struct {
	PostID, ProfileName, Platform, PlatformPostID, PlatformPostURL string
	ScheduledAt, PublishedAt, NextAttemptAt                        time.Time
	ErrorCode, ErrorMessage, ReconnectURL                          string
	Retryable                                                      bool
	Attempt                                                        int32
	CommentID, AuthorID, AuthorName, Text                          string
	AccountID, FollowerID, FollowerName                            string

	typed event.Event // only its typed fields are set, pointing at the values above
	err   error       // the first member of the wrong type
}

// mapData sets ev's typed fields from the members of data named after them. Other members
// are ignored: the raw body keeps them.
func mapData(data object, ev *event.Event) error {
	defer data.close()
	f := readFields(&data)
	if data.err != nil {
		return data.err
	}
	return f.fill(ev)
}

// readFields reads the members of data named after a typed field, to the end of data.
func readFields(data *object) *fields {
	f := new(fields)
	for {
		name, value, ok := data.next()
		if !ok {
			return f
		}
		if f.err == nil {
			f.err = f.set(&f.typed, name, value)
		}
	}
}

// fill points ev's typed fields at f's values, or fails with f's first wrongly typed member.
// It keeps ev's other fields, as the envelope holds them.
func (f *fields) fill(ev *event.Event) error {
	if f.err != nil {
		return f.err
	}
	typed := f.typed
	typed.ID, typed.Type, typed.Source, typed.Provider = ev.ID, ev.Type, ev.Source, ev.Provider
	typed.OccurredAt, typed.ReceivedAt, typed.Raw = ev.OccurredAt, ev.ReceivedAt, ev.Raw
	*ev = typed
	return nil
}

func (f *fields) set(ev *event.Event, name, value string) error {
	switch name {
	case "post_id":
		return set(&ev.PostID, &f.PostID, name, value, asString)
	case "profile_name":
		return set(&ev.ProfileName, &f.ProfileName, name, value, asString)
	case "platform":
		return set(&ev.Platform, &f.Platform, name, value, asString)
	case "platform_post_id":
		return set(&ev.PlatformPostID, &f.PlatformPostID, name, value, asString)
	case "platform_post_url":
		return set(&ev.PlatformPostURL, &f.PlatformPostURL, name, value, asString)
	case "scheduled_at":
		return set(&ev.ScheduledAt, &f.ScheduledAt, name, value, asTime)
	case "published_at":
		return set(&ev.PublishedAt, &f.PublishedAt, name, value, asTime)
	case "error_code":
		return set(&ev.ErrorCode, &f.ErrorCode, name, value, asString)
	case "error_message":
		return set(&ev.ErrorMessage, &f.ErrorMessage, name, value, asString)
	case "retryable":
		return set(&ev.Retryable, &f.Retryable, name, value, asBool)
	case "attempt":
		return set(&ev.Attempt, &f.Attempt, name, value, asInt32)
	case "next_attempt_at":
		return set(&ev.NextAttemptAt, &f.NextAttemptAt, name, value, asTime)
	case "reconnect_url":
		return set(&ev.ReconnectURL, &f.ReconnectURL, name, value, asString)
	case "comment_id":
		return set(&ev.CommentID, &f.CommentID, name, value, asString)
	case "author_id":
		return set(&ev.AuthorID, &f.AuthorID, name, value, asString)
	case "author_name":
		return set(&ev.AuthorName, &f.AuthorName, name, value, asString)
	case "text":
		return set(&ev.Text, &f.Text, name, value, asString)
	case "account_id":
		return set(&ev.AccountID, &f.AccountID, name, value, asString)
	case "follower_id":
		return set(&ev.FollowerID, &f.FollowerID, name, value, asString)
	case "follower_name":
		return set(&ev.FollowerName, &f.FollowerName, name, value, asString)
	}
	return nil
}

// set decodes value into slot and points dst at it; a null value leaves dst nil.
func set[T any](dst **T, slot *T, name, value string, d decoder[T]) error {
	if value == "null" {
		*dst = nil
		return nil
	}
	v, err := decodeField("data.", name, value, d)
	if err != nil {
		return err
	}
	*slot, *dst = v, slot
	return nil
}
