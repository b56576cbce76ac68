package providers

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/event"
)

// Normalize maps a delivery that carries an event; Split also says why one carries none.
func (p HMAC) Normalize(h Headers, body []byte, ev *event.Event) error {
	return normalizeOne(p, h, body, ev)
}

// Split reads the id, type, time and data where the scheme says. The type is mapped by
// hmac.types; a type it maps to "ignore" is acknowledged and produces nothing; a type
// neither mapped nor canonical is refused.
func (p HMAC) Split(h Headers, body []byte) ([]Part, error) {
	c := p.c
	if c == nil {
		return nil, unnormalizable("the hmac preset is not configured")
	}
	var root jsontext.Value
	if err := unmarshalBody(body, &root); err != nil {
		return nil, err
	}
	typ, err := c.value(h, root, c.typ, "event type")
	if err != nil {
		return nil, err
	}
	canonical, err := c.canonicalType(typ)
	if err != nil {
		return nil, err
	}
	if canonical == "ignore" {
		return []Part{{Ignored: fmt.Sprintf("hmac.types maps %s to ignore", quote(typ))}}, nil
	}
	var ev event.Event
	if ev.ID, err = c.value(h, root, c.id, "event id"); err != nil {
		return nil, err
	}
	ev.Type = canonical
	if err := c.fill(h, root, &ev); err != nil {
		return nil, err
	}
	return []Part{{Event: ev}}, nil
}

func (c *hmacConfig) canonicalType(typ string) (string, error) {
	if to, ok := c.types[typ]; ok {
		return to, nil
	}
	if event.Known(typ) {
		return typ, nil
	}
	return "", unnormalizable("unknown event type %s (map it in hmac.types)", quote(typ))
}

// value reads a string (or number) at l, which must be there.
func (c *hmacConfig) value(h Headers, root jsontext.Value, l *location, what string) (string, error) {
	if l.header != "" {
		if len(h.Peek(l.header)) == 0 {
			return "", unnormalizable("missing %s: no %s header", what, l.header)
		}
		return headerValue(h, l.header, what)
	}
	v, ok := jsonAt(root, l.path)
	if text := scalarText(v); ok && text != "" {
		return text, nil
	}
	return "", unnormalizable("missing %s: no string at %s", what, quote(strings.Join(l.path, ".")))
}

// fill sets the time and the data fields, where the scheme has them.
func (c *hmacConfig) fill(h Headers, root jsontext.Value, ev *event.Event) error {
	if c.time != nil {
		var v jsontext.Value
		if c.time.header != "" {
			v, _ = json.Marshal(string(h.Peek(c.time.header)))
		} else {
			v, _ = jsonAt(root, c.time.path)
		}
		if t, ok := unixTime(v); ok {
			ev.OccurredAt = t
		} else if present(v) && string(v) != `""` {
			return unnormalizable("event time %s: want RFC 3339 or unix seconds", describe(string(v)))
		}
	}
	if c.data == nil {
		return nil
	}
	data, ok := jsonAt(root, c.data.path)
	if !ok || !present(data) {
		return nil
	}
	env, err := readEnvelope(append(append([]byte(`{"data":`), data...), '}'), "type")
	if err != nil {
		return err
	}
	occurred := ev.OccurredAt
	err = env.fill(ev)
	ev.OccurredAt = occurred
	return err
}

// jsonAt finds the value at path in v: member names in objects, indexes in arrays.
func jsonAt(v jsontext.Value, path []string) (jsontext.Value, bool) {
	for _, seg := range path {
		switch v.Kind() {
		case '{':
			var m map[string]jsontext.Value
			if json.Unmarshal(v, &m) != nil {
				return nil, false
			}
			var ok bool
			if v, ok = m[seg]; !ok {
				return nil, false
			}
		case '[':
			var a []jsontext.Value
			i, err := strconv.Atoi(seg)
			if err != nil || json.Unmarshal(v, &a) != nil || i < 0 || i >= len(a) {
				return nil, false
			}
			v = a[i]
		default:
			return nil, false
		}
	}
	return v, true
}
