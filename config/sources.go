package config

import (
	"fmt"
	"strings"

	"github.com/socialbridge/bridge/bridge/providers"
)

// Source is one webhook endpoint: POST /webhooks/{name}.
type Source struct {
	Name     string   `yaml:"name"`
	Provider string   `yaml:"provider"`
	Secrets  []string `yaml:"secrets"`
	// Dedup is the source's own dedup settings (config/dedup.go).
	Dedup SourceDedup `yaml:"dedup"`
}

func (c *Config) validateSources(bad complaint) {
	if len(c.Sources) == 0 {
		bad("sources", "no sources: configure at least one")
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
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
		c.validateSecrets(bad, key, s)
		c.validateSourceDedup(bad, key, s)
	}
}

func (c *Config) validateSecrets(bad complaint, key string, s Source) {
	p, ok := providers.Lookup(s.Provider)
	if !ok {
		bad(key+".provider", "unknown provider %q (known: %s)", s.Provider, strings.Join(providers.Names(), ", "))
		return
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
