package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Slack posts messages to one incoming webhook.
type Slack struct {
	url    string // its path is its credential: never logged
	client *http.Client
}

func newSlack(webhookURL string, timeout time.Duration) *Slack {
	return &Slack{url: webhookURL, client: &http.Client{Timeout: timeout}}
}

// Post sends one message. A 429 with Retry-After is a backoff.RetryAfterError, so the
// retry waits as long as Slack asks; any other failure is an error to retry with backoff.
func (s *Slack) Post(ctx context.Context, msg []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(msg))
	if err != nil {
		return backoff.Permanent(errors.New("slack: bad webhook URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return fmt.Errorf("slack: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && resp.StatusCode == http.StatusTooManyRequests && s > 0 {
		return backoff.RetryAfter(s)
	}
	return fmt.Errorf("slack answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
}

// alertMessage is the Slack message of an alert: text for notifications, and blocks with
// the details and the reconnect link as a button when the event has one.
func alertMessage(a *Alert, repeat bool) []byte {
	who := fmt.Sprintf("%s on %s (source %s)", mrkdwn(a.Profile), mrkdwn(a.Platform), mrkdwn(a.Source))
	text := fmt.Sprintf(":warning: Token expired: %s must be reconnected before it can post again.", who)
	details := fmt.Sprintf("*Token expired*: %s must be reconnected before it can post again.\nPost `%s` could not be published (%s).",
		who, mrkdwn(a.PostID), a.OccurredAt.UTC().Format(time.RFC1123))
	blocks := []any{section(details)}
	if a.ReconnectURL != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "style": "primary", "url": a.ReconnectURL,
			"text": map[string]any{"type": "plain_text", "text": "Reconnect " + a.Platform},
		}}})
	}
	return message(text, blocks, a.ID, repeat)
}

// resolutionMessage is the Slack message that ends an alert.
func resolutionMessage(a *Alert, repeat bool) []byte {
	who := fmt.Sprintf("%s on %s (source %s)", mrkdwn(a.Profile), mrkdwn(a.Platform), mrkdwn(a.Source))
	text := fmt.Sprintf(":white_check_mark: Resolved: %s is posting again.", who)
	details := fmt.Sprintf("*Resolved*: %s is posting again: post `%s` was published.", who, mrkdwn(a.Resolution.PostID))
	if a.Resolution.PostURL != "" {
		details += " <" + a.Resolution.PostURL + "|See it>"
	}
	return message(text, []any{section(details)}, a.Resolution.ID, repeat)
}

func message(text string, blocks []any, id string, repeat bool) []byte {
	note := "event " + mrkdwn(id)
	if repeat {
		text += " (sent again: the bridge stopped while sending it, so it may be a repeat)"
		note += " · sent again after a restart, the first attempt's outcome is unknown"
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": note}}})
	return mustJSON(map[string]any{"text": text, "blocks": blocks})
}

func section(text string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}}
}

// mrkdwn escapes the three characters Slack's mrkdwn gives a meaning to.
func mrkdwn(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
