package providers

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/socialbridge/bridge/event"
)

// derivedID makes the event id of a provider that sends none: a hash of the fields that
// tell its events apart, so that every redelivery of an event gets the same id and no two
// events share one. Each field is length-prefixed, so no two lists of fields hash alike.
func derivedID(provider string, fields ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, f := range fields {
		h.Write(binary.AppendUvarint(n[:0], uint64(len(f))))
		h.Write([]byte(f))
	}
	return provider + "_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// normalizeOne is the Normalize of a Splitter: the delivery must carry exactly one event.
func normalizeOne(s Splitter, h Headers, body []byte, ev *event.Event) error {
	reset(ev)
	parts, err := s.Split(h, body)
	if err != nil {
		return err
	}
	switch {
	case len(parts) == 1 && parts[0].Ignored != "":
		return unnormalizable("the delivery maps to no event: %s", parts[0].Ignored)
	case len(parts) != 1:
		return unnormalizable("the delivery carries %d events, not one", len(parts))
	}
	caller := *ev
	*ev = parts[0].Event
	ev.Source, ev.Provider, ev.ReceivedAt, ev.Raw = caller.Source, caller.Provider, caller.ReceivedAt, caller.Raw
	return nil
}

// narrowed sets the Raw of each event part to the delivery narrowed to it, by narrow(i) for
// the part from element i, when there are several elements; with one, Raw stays nil and the
// caller keeps the body verbatim.
func narrowed(parts []Part, narrow func(i int) []byte) []Part {
	if len(parts) < 2 {
		return parts
	}
	for i := range parts {
		if parts[i].Ignored == "" {
			parts[i].Event.Raw = narrow(i)
		}
	}
	return parts
}
