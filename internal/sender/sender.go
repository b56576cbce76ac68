// Package sender renders sample deliveries of a configured source and posts them to a bridge
// the way the source's provider would: what `bridge simulate` and package bridgetest send.
// The deliveries come from the provider presets themselves (providers.Simulator), so every
// preset can be simulated; the events they carry are SampleEvent's.
package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
)

// Source is one webhook source of a bridge: POST /webhooks/{Name}, sent as Provider sends,
// signed with Secret (or, for presets authenticated by URL token, with Secret in the path).
type Source struct {
	Name     string
	Provider string
	Secret   string
	sim      providers.Simulator
}

// NewSource checks that provider is a preset that can be simulated and that it accepts
// secret; the error never shows the secret. For the presets that take settings (meta,
// hmac), use NewConfiguredSource.
func NewSource(name, provider, secret string) (Source, error) {
	return NewConfiguredSource(name, provider, secret, providers.Settings{})
}

// NewConfiguredSource is NewSource for a source with its preset settings, as the
// configuration gives them (config.Source.Settings). A polled preset (post-bridge) is
// refused: nothing is POSTed to its sources.
func NewConfiguredSource(name, provider, secret string, settings providers.Settings) (Source, error) {
	p, err := providers.New(provider, settings)
	if err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	sim, ok := p.(providers.Simulator)
	if !ok {
		return Source{}, fmt.Errorf("source %s: provider %s has no simulated deliveries", name, provider)
	}
	if _, polled := p.(providers.Poller); polled {
		return Source{}, fmt.Errorf("source %s: provider %s sends no webhooks (the bridge polls it), so there is nothing to send", name, provider)
	}
	if _, err := p.Key(secret); err != nil {
		return Source{}, fmt.Errorf("source %s: %w", name, err)
	}
	return Source{Name: name, Provider: provider, Secret: secret, sim: sim}, nil
}

// Types lists the event types the source's provider sends.
func (s Source) Types() []string { return s.sim.Types() }

// Sends reports whether the source's provider sends events of type t.
func (s Source) Sends(t string) bool { return slices.Contains(s.sim.Types(), t) }

// Sample renders a realistic event of type t with id as the provider delivers it at now,
// signed. n picks the post, profile and platform (see SampleEvent).
func (s Source) Sample(t, id string, n int, now time.Time) (providers.Delivery, error) {
	if !s.Sends(t) {
		return providers.Delivery{}, fmt.Errorf("provider %s does not send %s events (it sends %s)", s.Provider, t, strings.Join(s.Types(), ", "))
	}
	return s.sim.Deliver(SampleEvent(t, id, now, n), s.Secret, now)
}

// Tamper returns a copy of d that no bridge may accept: the body gains a byte after it was
// signed, and a URL token, if the preset uses one, is changed. A bridge must answer it 401.
func Tamper(d providers.Delivery) providers.Delivery {
	out := providers.Delivery{Header: d.Header.Clone(), Body: append(bytes.Clone(d.Body), ' ')}
	if d.Path != "" {
		out.Path = d.Path + "-forged"
	}
	return out
}

// Answer is the bridge's answer to one delivery: the HTTP status code, and the fields of its
// JSON body (docs/http.md) when it has them.
type Answer struct {
	Code      int    `json:"-"`
	Status    string `json:"status"`
	EventID   string `json:"event_id,omitempty"`
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition,omitempty"`
	Offset    int64  `json:"offset,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Body      []byte `json:"-"` // the body as received
}

// maxAnswer bounds how much of an answer is read: the bridge's are a few hundred bytes.
const maxAnswer = 64 << 10

// Post sends d to the source's endpoint under base (e.g. http://127.0.0.1:8080) and returns
// the answer. An error means no answer was had (connection refused, timeout, ctx ended).
func Post(ctx context.Context, cl *http.Client, base, source string, d providers.Delivery) (Answer, error) {
	target := strings.TrimSuffix(base, "/") + "/webhooks/" + source + d.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(d.Body))
	if err != nil {
		return Answer{}, err
	}
	req.Header = d.Header.Clone()
	resp, err := cl.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its URL may end in a token, which is a secret
			err = fmt.Errorf("POST %s: %w", strings.TrimSuffix(target, d.Path), ue.Err)
		}
		return Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Answer{}, fmt.Errorf("reading the answer: %w", err)
	}
	a := Answer{Code: resp.StatusCode, Body: body}
	_ = json.Unmarshal(body, &a) // an answer that is not the bridge's JSON keeps only its code
	return a, nil
}
