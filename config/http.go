package config

import (
	"net"
	"strings"
	"time"
)

// HTTP configures the ingress listener.
type HTTP struct {
	Listen         string `yaml:"listen"`
	MaxBodyBytes   int    `yaml:"max_body_bytes"`
	MaxHeaderBytes int    `yaml:"max_header_bytes"`
	// MaxBodyBytesInFlight bounds the bytes of request bodies the ingress holds at once,
	// being received or handled; MaxRequestsInFlight the deliveries handled at once past
	// their body. Past either, 503 with Retry-After.
	MaxBodyBytesInFlight int64    `yaml:"max_body_bytes_in_flight"`
	MaxRequestsInFlight  int      `yaml:"max_requests_in_flight"`
	ReadTimeout          Duration `yaml:"read_timeout"`
	WriteTimeout         Duration `yaml:"write_timeout"`
	IdleTimeout          Duration `yaml:"idle_timeout"`
	ShutdownTimeout      Duration `yaml:"shutdown_timeout"`
	DrainPeriod          Duration `yaml:"drain_period"`
	AdminListen          string   `yaml:"admin_listen"`
	AdminPprof           bool     `yaml:"admin_pprof"`
	TLS                  TLS      `yaml:"tls"`
	// SenderTraceparent is what a sender's traceparent header is to the delivery's trace:
	// link (a trace of its own, linked to the sender's), parent, or ignore (docs/tracing.md).
	SenderTraceparent string `yaml:"sender_traceparent"`
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
		Listen:               "127.0.0.1:8080",
		MaxBodyBytes:         1 << 20,
		MaxHeaderBytes:       32 << 10,
		MaxBodyBytesInFlight: 64 << 20,
		MaxRequestsInFlight:  4096,
		ReadTimeout:          Duration(10 * time.Second),
		WriteTimeout:         Duration(30 * time.Second),
		IdleTimeout:          Duration(120 * time.Second),
		ShutdownTimeout:      Duration(30 * time.Second),
		DrainPeriod:          Duration(5 * time.Second),
		SenderTraceparent:    "link",
	}
}

func (c *Config) validateHTTP(bad complaint) {
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "want host:port, got %q", c.HTTP.Listen)
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		bad("http.max_body_bytes", "must be positive, got %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxBodyBytesInFlight < int64(c.HTTP.MaxBodyBytes) {
		bad("http.max_body_bytes_in_flight", "must be at least http.max_body_bytes (%d), got %d", c.HTTP.MaxBodyBytes, c.HTTP.MaxBodyBytesInFlight)
	}
	if c.HTTP.MaxRequestsInFlight < 1 {
		bad("http.max_requests_in_flight", "must be positive, got %d", c.HTTP.MaxRequestsInFlight)
	}
	if c.HTTP.MaxHeaderBytes < minHeaderBytes {
		bad("http.max_header_bytes", "must be at least %d, got %d", minHeaderBytes, c.HTTP.MaxHeaderBytes)
	}
	positive(bad, "http.read_timeout", c.HTTP.ReadTimeout)
	positive(bad, "http.write_timeout", c.HTTP.WriteTimeout)
	positive(bad, "http.idle_timeout", c.HTTP.IdleTimeout)
	positive(bad, "http.shutdown_timeout", c.HTTP.ShutdownTimeout)
	if c.HTTP.DrainPeriod < 0 || c.HTTP.DrainPeriod >= c.HTTP.ShutdownTimeout {
		bad("http.drain_period", "must be at least 0 and shorter than http.shutdown_timeout (%s), got %s", c.HTTP.ShutdownTimeout, c.HTTP.DrainPeriod)
	}
	c.validateAdmin(bad)
	switch c.HTTP.SenderTraceparent {
	case "link", "parent", "ignore":
	default:
		bad("http.sender_traceparent", "want link, parent or ignore; got %q", c.HTTP.SenderTraceparent)
	}
	if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
		bad("http.tls", "cert and key must be set together")
	}
}

func (c *Config) validateAdmin(bad complaint) {
	h := c.HTTP
	if h.AdminListen == "" {
		if h.AdminPprof {
			bad("http.admin_pprof", "needs http.admin_listen: the profiler is served on the admin listener only")
		}
		return
	}
	if _, _, err := net.SplitHostPort(h.AdminListen); err != nil {
		bad("http.admin_listen", "want host:port, got %q", h.AdminListen)
	} else if h.AdminListen == h.Listen && !strings.HasSuffix(h.Listen, ":0") {
		bad("http.admin_listen", "must differ from http.listen (%s)", h.Listen)
	}
}
