package ingress

import (
	"log/slog"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// Beyond dedup by event id, a replay is stopped by what this file derives from a source's
// preset: a key of what is signed for a source whose id or type is not signed, and a check of
// the signed time of the deliveries that carry one.

// sourceState is what the ingress derives from a Source at New.
type sourceState struct {
	// keyed is the source's preset when its deliveries are deduplicated on a digest of what
	// is signed (see providers.ContentKeyed), nil when by event id.
	keyed providers.ContentKeyed
	// dated is the source's preset when its deliveries' signed time is checked against
	// MaxAge, nil when not.
	dated providers.Dated
}

// prepare derives src's state, and warns about what its configuration cannot protect.
func (src *Source) prepare(log *slog.Logger) {
	if ck, ok := src.Preset.(providers.ContentKeyed); ok && len(ck.UnsignedFields()) > 0 {
		src.state.keyed = ck
		log.Warn("the event id or type of a source's deliveries is not covered by its signature: "+
			"its deliveries are deduplicated on a digest of what is signed instead, so a resent delivery "+
			"is a duplicate whatever its unsigned headers say (and two deliveries of the same signed bytes are one event)",
			"source", src.Name, "unsigned", ck.UnsignedFields())
	}
	if d, ok := src.Preset.(providers.Dated); ok && src.MaxAge > 0 {
		src.state.dated = d
	}
}

// fresh refuses, as a replay, an authentic delivery of src whose signed time is older than
// src.MaxAge, or more than providers.ClockSkew ahead of now: it cannot be a sender's retry,
// which the dedup window covers.
func (s *Server) fresh(src *Source, body []byte, now time.Time) error {
	if src.state.dated == nil {
		return nil
	}
	at, ok := src.state.dated.SignedTime(body)
	if !ok {
		return nil
	}
	var err error
	switch {
	case now.Sub(at) > src.MaxAge:
		err = failure.New(failure.Unauthorized, "signed time %s is older than this source's max_age, %v: refused as a replay",
			at.UTC().Format(time.RFC3339), src.MaxAge)
	case at.Sub(now) > providers.ClockSkew:
		err = failure.New(failure.Unauthorized, "signed time %s is more than %v ahead of the bridge's clock: refused (a clock is off)",
			at.UTC().Format(time.RFC3339), providers.ClockSkew)
	default:
		return nil
	}
	s.metrics.stale.WithLabelValues(src.Name).Inc()
	return err
}

// dedupKey is the key a delivery of src is deduplicated on, when it is not its event id.
func (src *Source) dedupKey(h providers.Headers, body []byte) string {
	if src.state.keyed == nil {
		return ""
	}
	return src.state.keyed.DedupKey(h, body)
}
