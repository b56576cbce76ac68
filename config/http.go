package config

import (
	"net"
	"time"
)

// HTTP configures the ingress listener.
type HTTP struct {
	Listen          string   `yaml:"listen"`
	MaxBodyBytes    int      `yaml:"max_body_bytes"`
	MaxHeaderBytes  int      `yaml:"max_header_bytes"`
	ReadTimeout     Duration `yaml:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	TLS             TLS      `yaml:"tls"`
}

// TLS names a PEM certificate and key; with both set the ingress serves HTTPS only.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Key != "" }

// minHeaderBytes is the least header buffer that still takes an ordinary request.
const minHeaderBytes = 4096

func defaultHTTP() HTTP {
	return HTTP{
		Listen:          "127.0.0.1:8080",
		MaxBodyBytes:    1 << 20,
		MaxHeaderBytes:  32 << 10,
		ReadTimeout:     Duration(10 * time.Second),
		WriteTimeout:    Duration(30 * time.Second),
		IdleTimeout:     Duration(120 * time.Second),
		ShutdownTimeout: Duration(30 * time.Second),
	}
}

func (c *Config) validateHTTP(bad complaint) {
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "want host:port, got %q", c.HTTP.Listen)
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		bad("http.max_body_bytes", "must be positive, got %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxHeaderBytes < minHeaderBytes {
		bad("http.max_header_bytes", "must be at least %d, got %d", minHeaderBytes, c.HTTP.MaxHeaderBytes)
	}
	positive(bad, "http.read_timeout", c.HTTP.ReadTimeout)
	positive(bad, "http.write_timeout", c.HTTP.WriteTimeout)
	positive(bad, "http.idle_timeout", c.HTTP.IdleTimeout)
	positive(bad, "http.shutdown_timeout", c.HTTP.ShutdownTimeout)
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		bad("http.tls", "cert and key must be set together")
	}
}
