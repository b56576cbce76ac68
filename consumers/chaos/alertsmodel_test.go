package chaos_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
)

// noticeID reads the event type and id of a record of the alerts group's keyed topic: a
// notice, as docs/consumers.md describes it ('k', version 1, then length-prefixed strings,
// the type and the id first). A change of that encoding fails here, loudly.
func noticeID(v []byte) (typ, id string, err error) {
	if len(v) < 2 || v[0] != 'k' || v[1] != 1 {
		return "", "", fmt.Errorf("not a version 1 notice: % x", v[:min(len(v), 8)])
	}
	rest := v[2:]
	var s [2]string
	for i := range s {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return "", "", errors.New("malformed notice")
		}
		s[i], rest = string(rest[k:k+int(n)]), rest[k+int(n):]
	}
	return s[0], s[1], nil
}

// decision is a message the alerts group owes Slack by its documented rules: an alert
// (id: the token expiry's event id) or a resolution (id: the publish's; alert: the alert's).
type decision struct {
	kind, id, alert string
}

// keyState is one key's state in the model.
type keyState struct {
	alert    string    // the current alert's expiry id, "" if none
	raisedAt time.Time // when its expiry was received
	until    time.Time // the end of its cool-down
	resolved bool
	lastPub  time.Time // the latest publish's received_at
}

// decide replays the group's rules (docs/consumers.md, "alerts") over the committed keyed
// log, each partition in its order, which is the order the group decides in: an expiry
// alerts unless received at or before the key's last publish, or inside the cool-down of
// an unresolved alert; a publish received at or after the open alert's expiry resolves it.
// It returns each key's decisions in order, and the keyed records that name no event of
// the run.
func decide(keyed []*kgo.Record, events map[string]*event.Event, cooldown time.Duration) (map[string][]decision, []string) {
	byPartition := map[int32][]*kgo.Record{}
	for _, r := range keyed {
		byPartition[r.Partition] = append(byPartition[r.Partition], r)
	}
	out := map[string][]decision{}
	state := map[string]*keyState{}
	var strange []string
	for _, rs := range byPartition {
		slices.SortFunc(rs, func(a, b *kgo.Record) int { return int(a.Offset - b.Offset) })
		for _, r := range rs {
			_, id, err := noticeID(r.Value)
			ev := events[id]
			if err != nil || ev == nil {
				strange = append(strange, fmt.Sprintf("%s[%d]@%d: %v %q", r.Topic, r.Partition, r.Offset, err, id))
				continue
			}
			k := keyOf(ev)
			if state[k] == nil {
				state[k] = &keyState{}
			}
			if d, ok := state[k].apply(ev, cooldown); ok {
				out[k] = append(out[k], d)
			}
		}
	}
	return out, strange
}

// apply decides one event for its key.
func (s *keyState) apply(ev *event.Event, cooldown time.Duration) (decision, bool) {
	t := ev.ReceivedAt
	switch ev.Type {
	case event.PostTokenExpired:
		if !t.After(s.lastPub) || s.alert != "" && (s.alert == ev.ID || !s.resolved && t.Before(s.until)) {
			return decision{}, false
		}
		*s = keyState{alert: ev.ID, raisedAt: t, until: t.Add(cooldown), lastPub: s.lastPub}
		return decision{kind: "alert", id: ev.ID}, true
	case event.PostPublished:
		if t.After(s.lastPub) {
			s.lastPub = t
		}
		if s.alert == "" || s.resolved || t.Before(s.raisedAt) {
			return decision{}, false
		}
		s.resolved = true
		return decision{kind: "resolution", id: ev.ID, alert: s.alert}, true
	}
	return decision{}, false
}

// keyOf is an event's alert key as the stand-in Slack names it: source/profile/platform.
func keyOf(ev *event.Event) string {
	return ev.Source + "/" + *ev.ProfileName + "/" + *ev.Platform
}
