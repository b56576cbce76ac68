package providers

import "time"

// RetryHorizoner is implemented by the presets whose sender's retry policy is known (see
// FORMATS.md): RetryHorizon is how long after its first attempt the sender may still
// redeliver an event. The dedup window of such a source must cover it, or a late retry is
// produced twice. A preset without the method has no known horizon.
type RetryHorizoner interface {
	RetryHorizon() time.Duration
}

// Horizon returns p's retry horizon, and false when it has none.
func Horizon(p Preset) (time.Duration, bool) {
	if h, ok := p.(RetryHorizoner); ok {
		return h.RetryHorizon(), true
	}
	return 0, false
}
