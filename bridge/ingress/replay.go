package ingress

import (
	"log/slog"

	"github.com/socialbridge/bridge/bridge/providers"
)

// sourceState is what the ingress derives from a Source at New.
type sourceState struct {
	// keyed is the source's preset when its deliveries are deduplicated on a digest of what
	// is signed (see providers.ContentKeyed), nil when by event id.
	keyed providers.ContentKeyed
}

// prepare derives src's state, and warns about what its configuration cannot protect.
func (src *Source) prepare(log *slog.Logger) {
	if ck, ok := src.Preset.(providers.ContentKeyed); ok && len(ck.Unsigned()) > 0 {
		src.state.keyed = ck
		log.Warn("the event id or type of a source's deliveries is not covered by its signature: "+
			"its deliveries are deduplicated on a digest of what is signed instead, so a resent delivery "+
			"is a duplicate whatever its unsigned headers say (and two deliveries of the same signed bytes are one event)",
			"source", src.Name, "unsigned", ck.Unsigned())
	}
}

// dedupKey is the key a delivery of src is deduplicated on, when it is not its event id.
func (src *Source) dedupKey(h providers.Headers, body []byte) string {
	if src.state.keyed == nil {
		return ""
	}
	return src.state.keyed.DedupKey(h, body)
}
