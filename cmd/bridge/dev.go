package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
)

// devSecret is the codivupload secret of `bridge dev`. It is not a secret: dev mode runs
// on loopback with an in-process Kafka, for trying the bridge out.
const devSecret = "cdv_whsec_dev_only_not_a_secret"

func devCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the bridge on an in-process Kafka and schema registry (no Kafka needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev(cmd.Context(), listen, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "the address of the ingress")
	return cmd
}

// dev runs the bridge with no external service: franz-go's in-process Kafka (kfake) and
// schema registry (srfake), a codivupload source, and a printed curl that works.
func dev(ctx context.Context, listen string, stdout, stderr io.Writer) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("in-process kafka: %w", err)
	}
	defer cluster.Close()
	registry := srfake.New()
	defer registry.Close()

	cfg := devConfig(listen, cluster.ListenAddrs(), registry.URL())
	log := newLogger(cfg.Log, stderr)
	s, err := service.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		s.Shutdown(context.Background())
		return err
	}
	if err := s.WaitReady(ctx); err != nil {
		s.Shutdown(context.Background())
		return err
	}
	printWelcome(stdout, s.Addr(), cluster.ListenAddrs()[0], registry.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout.D())
	defer cancel()
	return s.Shutdown(sctx)
}

func devConfig(listen string, brokers []string, registryURL string) config.Config {
	cfg := config.Default()
	cfg.HTTP.Listen = listen
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Partitions = 1
	cfg.SchemaRegistry.URL = registryURL
	cfg.Sources = []config.Source{{Name: "codivupload", Provider: "codivupload", Secrets: []string{devSecret}}}
	return cfg
}

func printWelcome(w io.Writer, addr, broker, registryURL string) {
	body := fmt.Sprintf(`{"event":"post.published","id":"evt_dev_%s","timestamp":"%s","data":{"post_id":"post_k8m2v9x1","profile_name":"main","platform":"instagram","platform_post_id":"17891234567890","platform_post_url":"https://instagram.com/p/Cabc123/","scheduled_at":"2026-05-08T14:00:00Z","published_at":"2026-05-08T14:00:42Z"}}`,
		randomHex(4), time.Now().UTC().Format(time.RFC3339))
	mac := hmac.New(sha256.New, []byte(devSecret))
	mac.Write([]byte(body))
	fmt.Fprintf(w, `
bridge dev is ready: http://%s  (in-process Kafka at %s, schema registry at %s)
source "codivupload", secret %q (dev only)

Send a signed webhook:

curl -sS -X POST http://%s/webhooks/codivupload \
  -H 'Content-Type: application/json' \
  -H 'X-CodivUpload-Event: post.published' \
  -H 'X-CodivUpload-Signature: %s' \
  --data-raw '%s'

Send it again to see "duplicate". Metrics: http://%s/metrics

Try next, in another terminal: every event type, with redeliveries and forged signatures,
then every record the bridge wrote, decoded:

  %s
  %s

Stop with Ctrl-C.
`, addr, broker, registryURL, devSecret, addr, hex.EncodeToString(mac.Sum(nil)), body, addr,
		simulateHint(addr), tailHint(broker, registryURL))
}

// simulateHint is a simulate command that works against this dev bridge as printed.
func simulateHint(addr string) string {
	cmd := self() + " simulate all --count 20 --duplicates 0.2 --bad-signatures 0.1"
	if addr != "127.0.0.1:8080" {
		cmd += " --url http://" + addr
	}
	return cmd
}

// tailHint is a tail command that reads this dev bridge's in-process Kafka.
func tailHint(broker, registryURL string) string {
	return self() + " tail --from-beginning --brokers " + broker + " --registry " + registryURL
}

// self is how the user ran this binary: `go run ./cmd/bridge` leaves it in a go-build
// folder, where it cannot be run again.
func self() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/bridge"
	}
	return os.Args[0]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
