package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConsumeRefusesWhatItCannotRun(t *testing.T) {
	for _, group := range []string{"retries", "alerts"} {
		if err := run(context.Background(), []string{"consume", group}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("consume %s without --config: %v", group, err)
		}
	}
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte("kafka: {brokers: [\"127.0.0.1:1\"]}\nsources: [{name: a, provider: codivupload, secrets: [x]}]\n"), 0o600)
	for group, key := range map[string]string{"retries": "consumers.retries.action.url", "alerts": "consumers.alerts.slack_webhook_url"} {
		err := run(context.Background(), []string{"consume", group, "--config", path}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("consume %s without %s: %v", group, key, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kafka: {brokers: [\"127.0.0.1:1\"]}\nsources: [{name: a, provider: codivupload, secrets: [x]}]\nconsumers: {alerts: {cooldown: 0s}}\n"), 0o600)
	if err := run(context.Background(), []string{"consume", "alerts", "--config", bad}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "consumers.alerts.cooldown") {
		t.Errorf("consume alerts with a bad alerts section: %v", err)
	}
}

// TestConsumeNeedsItsOwnSecretsOnly: each group expands and requires its own section of the
// shared file, never the sources' secrets nor another group's.
func TestConsumeNeedsItsOwnSecretsOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte(`kafka: {brokers: ["127.0.0.1:1"]}
sources: [{name: a, provider: codivupload, secrets: ["${TEST_UNSET_WEBHOOK_SECRET}"]}]
consumers:
  retries: {action: {url: "http://127.0.0.1:1/retry", headers: {Authorization: "Bearer ${TEST_UNSET_RETRY_API_KEY}"}}}
  alerts: {slack_webhook_url: "${TEST_UNSET_SLACK_WEBHOOK_URL}"}
`), 0o600)
	err := run(context.Background(), []string{"consume", "alerts", "--config", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "line 5: environment variable TEST_UNSET_SLACK_WEBHOOK_URL is not set") {
		t.Errorf("consume alerts without its Slack URL: %v", err)
	}
	err = run(context.Background(), []string{"consume", "retries", "--config", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "environment variable TEST_UNSET_RETRY_API_KEY is not set") {
		t.Errorf("consume retries without its API key: %v", err)
	}
}
