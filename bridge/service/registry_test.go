package service_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestRegistryBasicAuth runs the bridge against a registry that wants basic auth: the
// credentials of schema_registry.username/.password, or of the URL, are sent; wrong ones
// fail the start without the password in the error.
func TestRegistryBasicAuth(t *testing.T) {
	reg := srfake.New(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("bridge:reg-pass"))))
	t.Cleanup(reg.Close)
	brokers := kafkatest.Brokers(t)
	withURL := strings.Replace(reg.URL(), "http://", "http://bridge:reg-pass@", 1)
	for name, set := range map[string]func(*config.SchemaRegistry){
		"username and password": func(r *config.SchemaRegistry) { r.URL, r.Username, r.Password = reg.URL(), "bridge", "reg-pass" },
		"in the URL":            func(r *config.SchemaRegistry) { r.URL = withURL },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, brokers)
			set(&cfg.SchemaRegistry)
			b := start(t, cfg)
			h, body := codiv("post.published", "evt_auth")
			if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
				t.Fatalf("%+v", a)
			}
		})
	}
	cfg := testConfig(t, brokers)
	cfg.SchemaRegistry.URL = strings.Replace(withURL, "reg-pass", "wrong-pass", 1)
	err := startErr(t, cfg)
	if err == nil || strings.Contains(err.Error(), "wrong-pass") {
		t.Fatalf("wrong credentials: %v; want an error without the password", err)
	}
}

// TestRegistryRegisterFalse: with schema_registry.register false the bridge looks the
// schemas up, and an empty registry fails its start with a message that says why.
func TestRegistryRegisterFalse(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cfg := testConfig(t, kafkatest.Brokers(t))
	cfg.SchemaRegistry.URL, cfg.SchemaRegistry.Register = reg.URL(), false
	err := startErr(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "register is false") {
		t.Fatalf("err = %v, want one saying the schemas must be registered", err)
	}
	if subjects := reg.SubjectExists(cfg.Kafka.TopicPrefix + "post.published-value"); subjects {
		t.Error("a schema was registered")
	}
	cfg.SchemaRegistry.Register = true
	start(t, cfg).stop(t) // registers them
	cfg.SchemaRegistry.Register = false
	b := start(t, cfg)
	h, body := codiv("post.published", "evt_lookup")
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("%+v", a)
	}
}

// startErr builds a bridge that is expected to fail its start, and returns the error.
func startErr(t *testing.T, cfg config.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := service.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), service.Options{})
	if err == nil {
		s.Shutdown(ctx)
	}
	return err
}
