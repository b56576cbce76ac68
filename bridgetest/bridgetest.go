// Package bridgetest starts the bridge's container image for integration tests, with
// testcontainers-go, against the Kafka brokers a test gives it: the test's own code then
// posts webhooks to it (or lets Send post realistic signed ones) and reads what the bridge
// produced (WaitForEvent). It runs on the host's network, so brokers and the schema
// registry are addressed as the test reaches them, e.g. 127.0.0.1:9092.
//
// The image must be on the Docker engine: `make image` builds DefaultImage from a checkout
// of the bridge. testcontainers-go pulls its Ryuk reaper image unless
// TESTCONTAINERS_RYUK_DISABLED=true; set it where no registry can be reached, and stop the
// container with Terminate.
package bridgetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.yaml.in/yaml/v3"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/sender"
)

// configPath is where the image's default command reads its configuration.
const configPath = "/etc/bridge/bridge.yaml"

// Container is a running bridge.
type Container struct {
	ctr     *testcontainers.DockerContainer
	url     string
	cfg     config.Config
	sources []sender.Source
	http    *http.Client
}

// Run starts the bridge's image against brokers and returns once it answers /readyz (Kafka
// reachable, topics present). On failure it says why, with the bridge's last log lines.
func Run(ctx context.Context, brokers []string, opts ...Opt) (*Container, error) {
	o := defaultCfg()
	for _, opt := range opts {
		opt.apply(&o)
	}
	c, err := prepare(o, brokers)
	if err != nil {
		return nil, err
	}
	file, err := yaml.Marshal(c.cfg)
	if err != nil {
		return nil, fmt.Errorf("bridgetest: %w", err)
	}
	c.ctr, err = testcontainers.Run(ctx, o.image, customizers(o, c, file)...)
	if err != nil {
		err = fmt.Errorf("bridgetest: starting %s: %w%s", o.image, err, logTail(c.ctr))
		_ = c.Terminate(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := c.waitReady(ctx, o.startupTimeout); err != nil {
		_ = c.Terminate(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// prepare builds the configuration and the senders of the sources, checking them first.
func prepare(o cfg, brokers []string) (*Container, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("bridgetest: no brokers")
	}
	port, err := hostPort(o.port)
	if err != nil {
		return nil, err
	}
	if len(o.sources) == 0 {
		o.sources = []source{{DefaultSource, "codivupload", DefaultSecret}}
	}
	c := &Container{cfg: config.Default(), url: "http://127.0.0.1:" + strconv.Itoa(port), http: &http.Client{Timeout: time.Minute}}
	c.cfg.HTTP.Listen = "127.0.0.1:" + strconv.Itoa(port)
	c.cfg.Kafka.Brokers, c.cfg.Kafka.TopicPrefix, c.cfg.SchemaRegistry.URL = brokers, o.prefix, o.registry
	for _, s := range o.sources {
		snd, err := sender.NewSource(s.name, s.provider, s.secret)
		if err != nil {
			return nil, fmt.Errorf("bridgetest: %w", err)
		}
		c.sources = append(c.sources, snd)
		c.cfg.Sources = append(c.cfg.Sources, config.Source{Name: s.name, Provider: s.provider, Secrets: []string{s.secret}})
	}
	for _, f := range o.configure {
		f(&c.cfg)
	}
	if err := c.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridgetest: %w", err)
	}
	return c, nil
}

// hostPort returns port, or a free port of 127.0.0.1 when it is 0.
func hostPort(port int) (int, error) {
	if port != 0 {
		return port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bridgetest: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// customizers are the container's settings: the host's network, the configuration file,
// and a health check on the chosen port, polled often so that Run returns quickly.
func customizers(o cfg, c *Container, file []byte) []testcontainers.ContainerCustomizer {
	health := []string{"CMD", "/usr/local/bin/bridge", "healthcheck", "--url", c.url + "/healthz"}
	cs := []testcontainers.ContainerCustomizer{
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithConfigModifier(func(cc *container.Config) {
			cc.Healthcheck = &container.HealthConfig{Test: health, Interval: 250 * time.Millisecond, Timeout: 3 * time.Second, Retries: 3}
		}),
		testcontainers.WithFiles(testcontainers.ContainerFile{Reader: bytes.NewReader(file), ContainerFilePath: configPath, FileMode: 0o644}),
		testcontainers.WithEnv(o.env),
		testcontainers.WithWaitStrategy(wait.ForHealthCheck().WithPollInterval(100 * time.Millisecond).WithStartupTimeout(o.startupTimeout)),
	}
	if o.logs != nil {
		cs = append(cs, testcontainers.WithLogConsumers(logTo{o.logs}))
	}
	return cs
}

// logTo copies the container's log lines to a writer.
type logTo struct{ w io.Writer }

func (l logTo) Accept(entry testcontainers.Log) { _, _ = l.w.Write(entry.Content) }

// waitReady polls /readyz until it answers 200: the bridge listens before its readiness
// watch has seen Kafka.
func (c *Container) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/readyz", nil)
		resp, err := c.http.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bridgetest: the bridge was not ready within %v: %w%s", limit, ctx.Err(), logTail(c.ctr))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail returns the last lines the container logged, to explain a failed start.
func logTail(ctr *testcontainers.DockerContainer) string {
	if ctr == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return "\nbridge log:\n" + string(b)
}

// URL is the bridge's base URL on the host, e.g. http://127.0.0.1:41234.
func (c *Container) URL() string { return c.url }

// WebhookURL is the URL a provider posts source's webhooks to.
func (c *Container) WebhookURL(source string) string { return c.url + "/webhooks/" + source }

// Topic is the topic the bridge writes events of eventType to.
func (c *Container) Topic(eventType string) string { return c.cfg.Kafka.TopicPrefix + eventType }

// Config is the configuration the bridge runs with (secrets included: it is a test's).
func (c *Container) Config() config.Config { return c.cfg }

// Terminate stops and removes the container.
func (c *Container) Terminate(ctx context.Context) error {
	if c.ctr == nil {
		return nil
	}
	return c.ctr.Terminate(ctx)
}
