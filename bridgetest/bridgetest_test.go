package bridgetest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/bridgetest"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/imagetest"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// start runs the image built from the working tree against the test broker, under a
// topic prefix of the test's own, and stops it when the test ends.
func start(t *testing.T, opts ...bridgetest.Opt) *bridgetest.Container {
	t.Helper()
	image := imagetest.Build(t)
	opts = append([]bridgetest.Opt{bridgetest.Image(image), bridgetest.TopicPrefix(kafkatest.Prefix(t)), bridgetest.Logs(t.Output())}, opts...)
	c, err := bridgetest.Run(t.Context(), kafkatest.Brokers(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Terminate(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

// TestEveryTypeOfEverySource sends each event type of two providers' formats to the
// container and finds each one in Kafka, decoded, with the id the bridge answered.
func TestEveryTypeOfEverySource(t *testing.T) {
	c := start(t,
		bridgetest.Source("codiv", "codivupload", "cdv_whsec_bridgetest"),
		bridgetest.Source("acme", "standard-webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
	sent := 0
	for source, types := range map[string][]string{"codiv": event.Types[:4], "acme": event.Types} {
		for _, typ := range types {
			a, err := c.SendFrom(t.Context(), source, typ)
			if err != nil || a.Code != http.StatusOK || a.Status != "accepted" || a.Topic != c.Topic(typ) {
				t.Fatalf("%s %s: %+v %v", source, typ, a, err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			ev, err := c.WaitForEvent(ctx, typ, a.EventID)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != a.EventID || ev.Type != typ || ev.Source != source || len(ev.Raw) == 0 || ev.ReceivedAt.IsZero() {
				t.Errorf("%s %s: read back %+v", source, typ, ev)
			}
			sent++
		}
	}
	if _, err := c.SendFrom(t.Context(), "codiv", event.CommentReceived); err == nil {
		t.Error("codivupload does not send comments, yet Send sent one")
	}
	t.Logf("%d events sent and read back", sent)
}

// TestRegistryAndConfigure runs the container with a schema registry on the host and a
// changed configuration; WaitForEvent decodes by schema id.
func TestRegistryAndConfigure(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	c := start(t, bridgetest.SchemaRegistry(reg.URL()), bridgetest.Configure(func(cfg *config.Config) {
		cfg.Kafka.Partitions = 1
	}))
	a, err := c.Send(t.Context(), event.PostFailed)
	if err != nil || a.Status != "accepted" || a.Partition != 0 {
		t.Fatalf("%+v %v", a, err)
	}
	ev, err := c.WaitForEvent(t.Context(), event.PostFailed, a.EventID)
	if err != nil || ev.ErrorCode == nil {
		t.Fatalf("%+v %v", ev, err)
	}
	rc, _ := sr.NewClient(sr.URLs(reg.URL()))
	subjects, err := rc.Subjects(t.Context())
	if err != nil || len(subjects) != len(event.Types) {
		t.Fatalf("registry subjects %v, %v", subjects, err)
	}
	resp, err := http.Post(c.WebhookURL(bridgetest.DefaultSource), "application/json", strings.NewReader(`{}`))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unsigned post: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestRunSaysWhy: a bridge that cannot reach Kafka fails Run with its own log attached,
// and a bad option fails before any container starts.
func TestRunSaysWhy(t *testing.T) {
	image := imagetest.Build(t)
	_, err := bridgetest.Run(t.Context(), []string{"127.0.0.1:1"}, bridgetest.Image(image), bridgetest.StartupTimeout(5*time.Second))
	if err == nil || !strings.Contains(err.Error(), "bridge log:") {
		t.Fatalf("Run against no Kafka: %v", err)
	}
	_, err = bridgetest.Run(t.Context(), []string{"127.0.0.1:1"}, bridgetest.Source("x", "zapier", "s"))
	if err == nil || !strings.Contains(err.Error(), `unknown provider "zapier"`) {
		t.Fatalf("unknown provider: %v", err)
	}
}
