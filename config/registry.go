package config

import (
	"net/url"
	"strings"
)

// SchemaRegistry configures the optional Confluent-compatible schema registry.
type SchemaRegistry struct {
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Register registers the schemas at start; false looks them up instead, for
	// credentials that may only read.
	Register bool `yaml:"register"`
}

// Endpoint returns the registry's URL without credentials, and the basic-auth user and
// password: username and password, or the user info of the URL (https://user:pass@host).
func (r SchemaRegistry) Endpoint() (base, user, password string) {
	u, err := url.Parse(r.URL)
	if err != nil || u.User == nil {
		return r.URL, r.Username, r.Password
	}
	user = u.User.Username()
	password, _ = u.User.Password()
	u.User = nil
	return u.String(), user, password
}

// redacted masks the password, and the URL's user info, which may be a credential.
func (r SchemaRegistry) redacted() SchemaRegistry {
	if r.Password != "" {
		r.Password = redacted
	}
	r.URL = redactURL(r.URL)
	return r
}

// redactURL masks the user info of s, if any. A value that is not a URL is masked whole
// when it has an '@' (it may hold credentials that failed to parse).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return redacted
		}
		return s
	}
	if u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	} else {
		u.User = url.User("xxxxx")
	}
	return u.String()
}

const redacted = "[redacted]"

func (c *Config) validateRegistry(bad complaint) {
	r := c.SchemaRegistry
	if r.URL == "" {
		return
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("schema_registry.url", "want an http:// or https:// URL, got %q", redactURL(r.URL))
		return
	}
	if u.User != nil && (r.Username != "" || r.Password != "") {
		bad("schema_registry.url", "has credentials, and so do schema_registry.username and .password: keep one")
	}
}
