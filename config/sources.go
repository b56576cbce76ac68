package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
)

// Source is one webhook endpoint: POST /webhooks/{name}, or, for a polled provider, one
// API polled on an interval. VerifyToken, HMAC and Poll are for the presets that take them
// (meta, hmac, post-bridge); any other preset refuses them.
type Source struct {
	Name        string   `yaml:"name"`
	Provider    string   `yaml:"provider"`
	Secrets     []string `yaml:"secrets"`
	VerifyToken string   `yaml:"verify_token"`
	HMAC        *HMAC    `yaml:"hmac"`
	Poll        *Poll    `yaml:"poll"`
	// Dedup is the source's own dedup settings (config/dedup.go).
	Dedup SourceDedup `yaml:"dedup"`
	// MaxAge bounds the age of the signed time of a delivery, for the presets whose
	// deliveries carry one (providers.Dated); see MaxAgeOf. 0 turns the check off.
	MaxAge *Duration `yaml:"max_age"`
	// Spool, when set, says whether the source's deliveries go to the spool when Kafka cannot
	// take them; unset, spool.horizon_below decides (see Config.Spools).
	Spool *bool `yaml:"spool"`
}

// HMAC is the scheme of the generic hmac preset; providers.HMACScheme says what each key
// means, and docs/providers.md works it out for GitHub and Stripe.
type HMAC struct {
	Header          string            `yaml:"header"`
	Prefix          string            `yaml:"prefix"`
	Encoding        string            `yaml:"encoding"`
	Signed          string            `yaml:"signed"`
	TimestampHeader string            `yaml:"timestamp_header"`
	TimestampPrefix string            `yaml:"timestamp_prefix"`
	Tolerance       Duration          `yaml:"tolerance"`
	ID              string            `yaml:"id"`
	Type            string            `yaml:"type"`
	Time            string            `yaml:"time"`
	Data            string            `yaml:"data"`
	Types           map[string]string `yaml:"types"`
}

// Poll is how a polled source asks its API for new results.
type Poll struct {
	BaseURL  string   `yaml:"base_url"`
	Interval Duration `yaml:"interval"`
}

// The defaults of a polled source's poll section, also when it has none.
const (
	defaultPollBaseURL  = "https://api.post-bridge.com"
	defaultPollInterval = Duration(time.Minute)
	minPollInterval     = Duration(time.Second)
)

// Settings are the source's preset settings, as providers.New takes them.
func (s Source) Settings() providers.Settings {
	out := providers.Settings{VerifyToken: s.VerifyToken}
	if h := s.HMAC; h != nil {
		out.HMAC = &providers.HMACScheme{
			Header: h.Header, Prefix: h.Prefix, Encoding: h.Encoding, Signed: h.Signed,
			TimestampHeader: h.TimestampHeader, TimestampPrefix: h.TimestampPrefix, Tolerance: h.Tolerance.D(),
			ID: h.ID, Type: h.Type, Time: h.Time, Data: h.Data, Types: h.Types,
		}
	}
	return out
}

func (c *Config) validateSources(bad complaint) {
	if len(c.Sources) == 0 {
		bad("sources", "no sources: configure at least one")
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Name == "":
			bad(key+".name", "missing")
		case !validName(s.Name):
			bad(key+".name", "%q: use letters, digits, '-', '_' and '.' only (it is a URL path segment)", s.Name)
		case seen[s.Name]:
			bad(key+".name", "duplicate source name %q", s.Name)
		}
		seen[s.Name] = true
		if p := validatePreset(bad, key, *s); p != nil {
			validatePoll(bad, key, s, p)
		}
		if s.Dedup.Window < 0 {
			bad(key+".dedup.window", "must be positive, got %s", s.Dedup.Window)
		}
		validateMaxAge(bad, key, *s)
	}
	c.validateSharedSecrets(bad)
}

// MaxAgeOf returns how old the signed time of a delivery of s may be before it is refused as
// a replay, 0 for no check: its max_age when set, else, for a preset whose deliveries carry a
// signed time, its dedup window less providers.ClockSkew (less half the window when that is
// shorter), so that a replay is either within the window, a duplicate, or refused.
func (c *Config) MaxAgeOf(s Source) time.Duration {
	if s.MaxAge != nil {
		return s.MaxAge.D()
	}
	if !dated(s.Provider) {
		return 0
	}
	w := c.SourceWindow(s)
	return w - min(providers.ClockSkew, w/2)
}

func dated(provider string) bool {
	p, ok := providers.Lookup(provider)
	if ok {
		_, ok = p.(providers.Dated)
	}
	return ok
}

func validateMaxAge(bad complaint, key string, s Source) {
	switch {
	case s.MaxAge == nil:
	case *s.MaxAge < 0:
		bad(key+".max_age", "must not be negative, got %s (0s turns the check off)", *s.MaxAge)
	case !dated(s.Provider):
		var with []string
		for _, name := range providers.Names() {
			if dated(name) {
				with = append(with, name)
			}
		}
		bad(key+".max_age", "provider %s signs no time to check; only %s do", s.Provider, strings.Join(with, ", "))
	}
}

// validateSharedSecrets refuses a secret shared by sources of different providers: a
// signature made for one (a delivery's, or the answer of a handshake, which signs what anyone
// asks within its rules) could pass at the other, whose rules differ. Sources of one provider
// may share a secret: one account may post to several endpoints.
func (c *Config) validateSharedSecrets(bad complaint) {
	type owner struct {
		source   int
		provider string
	}
	first := map[string]owner{}
	for i, s := range c.Sources {
		for j, secret := range s.Secrets {
			o, seen := first[secret]
			switch {
			case secret == "":
			case !seen:
				first[secret] = owner{i, s.Provider}
			case o.provider != s.Provider:
				bad(fmt.Sprintf("sources[%d].secrets[%d]", i, j), "also a secret of sources[%d], of provider %s: what one signs (a delivery, a handshake's answer) could pass at the other; give each its own",
					o.source, o.provider)
			}
		}
	}
}

// validatePreset builds the source's preset as the bridge will, and checks its secrets.
func validatePreset(bad complaint, key string, s Source) providers.Preset {
	p, err := providers.New(s.Provider, s.Settings())
	if se, ok := errors.AsType[*providers.SettingError](err); ok {
		// A setting's problem names its key, never its value: verify tokens are secrets.
		bad(key+"."+se.Key, "%s", se.Problem)
		return nil
	}
	if err != nil {
		bad(key+".provider", "%v", err)
		return nil
	}
	if len(s.Secrets) == 0 {
		bad(key+".secrets", "source %q has no secret", s.Name)
	}
	for j, secret := range s.Secrets {
		if _, err := p.Key(secret); err != nil {
			// err comes from the preset, whose contract is to never echo the secret.
			bad(fmt.Sprintf("%s.secrets[%d]", key, j), "%v", err)
		}
	}
	return p
}

// validatePoll fills a polled source's poll section with its defaults and checks it; any
// other source must have none.
func validatePoll(bad complaint, key string, s *Source, p providers.Preset) {
	if _, polled := p.(providers.Poller); !polled {
		if s.Poll != nil {
			bad(key+".poll", "provider %s sends webhooks: only a polled provider (post-bridge) takes poll", s.Provider)
		}
		return
	}
	if s.Poll == nil {
		s.Poll = &Poll{}
	}
	if s.Poll.BaseURL == "" {
		s.Poll.BaseURL = defaultPollBaseURL
	}
	if s.Poll.Interval == 0 {
		s.Poll.Interval = defaultPollInterval
	}
	if u, err := url.Parse(s.Poll.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad(key+".poll.base_url", "want an http(s) URL, got %q", s.Poll.BaseURL)
	}
	if s.Poll.Interval < minPollInterval {
		bad(key+".poll.interval", "want at least %s, got %s", minPollInterval, s.Poll.Interval)
	}
}

func validName(s string) bool {
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
