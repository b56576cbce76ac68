package bridgetest

import (
	"io"
	"time"

	"github.com/socialbridge/bridge/config"
)

// DefaultImage is the image Run starts unless told otherwise: what `make image` builds.
const DefaultImage = "socialbridge/bridge:latest"

// Default source of a bridge started without a Source option.
const (
	DefaultSource = "codivupload"
	DefaultSecret = "bridgetest_codivupload_secret"
)

// Opt configures Run.
type Opt interface{ apply(*cfg) }

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type source struct{ name, provider, secret string }

type cfg struct {
	image          string
	prefix         string
	registry       string
	sources        []source
	port           int
	startupTimeout time.Duration
	configure      []func(*config.Config)
	env            map[string]string
	logs           io.Writer
}

func defaultCfg() cfg {
	return cfg{image: DefaultImage, prefix: "social.", startupTimeout: 60 * time.Second, env: map[string]string{}}
}

// Image sets the image to start; default DefaultImage.
func Image(ref string) Opt { return opt(func(c *cfg) { c.image = ref }) }

// TopicPrefix sets kafka.topic_prefix; default "social.". Tests sharing a broker keep
// apart by giving each bridge a prefix of its own.
func TopicPrefix(p string) Opt { return opt(func(c *cfg) { c.prefix = p }) }

// SchemaRegistry sets schema_registry.url (reached from the host's network); default none,
// so values are Avro single-object encoded.
func SchemaRegistry(url string) Opt { return opt(func(c *cfg) { c.registry = url }) }

// Source adds a webhook source: POST /webhooks/{name}, verified as provider's deliveries
// with secret. Without any, the bridge has DefaultSource (codivupload) with DefaultSecret.
func Source(name, provider, secret string) Opt {
	return opt(func(c *cfg) { c.sources = append(c.sources, source{name, provider, secret}) })
}

// Port sets the host port of the ingress, on 127.0.0.1; default a free one.
func Port(port int) Opt { return opt(func(c *cfg) { c.port = port }) }

// StartupTimeout bounds how long Run waits for the bridge to be healthy and ready; default
// one minute.
func StartupTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.startupTimeout = d }) }

// Configure changes the bridge's configuration after the options above are applied and
// before it is written, for any key they do not cover (dedup.window, kafka.partitions…).
func Configure(f func(*config.Config)) Opt {
	return opt(func(c *cfg) { c.configure = append(c.configure, f) })
}

// Env sets an environment variable of the container, e.g. one a ${VAR} of the
// configuration names.
func Env(name, value string) Opt { return opt(func(c *cfg) { c.env[name] = value }) }

// Logs copies the bridge's log lines to w as they come, e.g. to a test's log.
func Logs(w io.Writer) Opt { return opt(func(c *cfg) { c.logs = w }) }
