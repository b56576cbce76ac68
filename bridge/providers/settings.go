package providers

import (
	"fmt"
	"strings"
)

// Settings are what a source's configuration says beyond its provider and secrets: the keys
// only some presets take. The zero value is a source with none of them.
type Settings struct {
	// VerifyToken is meta's: the hub.verify_token its GET verification must present.
	VerifyToken string
	// HMAC is the whole scheme of the generic hmac preset.
	HMAC *HMACScheme
}

// SettingError is a setting a preset refuses. Key names it under its source, as the
// configuration spells it ("hmac.encoding"); Problem says what is wrong, naming no secret.
type SettingError struct {
	Key, Problem string
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Problem }

func refuse(key, format string, args ...any) *SettingError {
	return &SettingError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// configurable is a preset built from Settings.
type configurable interface {
	configure(s Settings) (Preset, error)
}

// New returns the preset registered under name, configured with s for one source: the one
// place where a source's configuration becomes its preset. It fails with a *SettingError
// on an unknown name, a setting the preset does not take, or one it needs and lacks.
func New(name string, s Settings) (Preset, error) {
	p, ok := registry[name]
	if !ok {
		return nil, refuse("provider", "unknown provider %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if c, ok := p.(configurable); ok {
		return c.configure(s)
	}
	return p, onlyFor(s, "")
}

// onlyFor refuses the settings of s that the preset named takes not: each setting belongs to
// one preset.
func onlyFor(s Settings, name string) error {
	switch {
	case s.VerifyToken != "" && name != "meta":
		return refuse("verify_token", "only the meta preset takes it")
	case s.HMAC != nil && name != "hmac":
		return refuse("hmac", "only the hmac preset takes it")
	}
	return nil
}
