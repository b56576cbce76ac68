package grouptest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// CatchAttr returns log, passing every record on, and a channel that receives the value of
// the first attribute named attr any record carries: a group logs the address it bound
// (attribute "metrics": its /metrics URL), so that no test picks a port free and binds it
// later.
func CatchAttr(log *slog.Logger, attr string) (*slog.Logger, <-chan string) {
	ch := make(chan string, 1)
	return slog.New(catcher{log.Handler(), attr, ch}), ch
}

type catcher struct {
	slog.Handler
	attr string
	ch   chan string
}

func (c catcher) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == c.attr {
			select {
			case c.ch <- a.Value.String():
			default:
			}
		}
		return true
	})
	return c.Handler.Handle(ctx, r)
}

func (c catcher) WithAttrs(as []slog.Attr) slog.Handler {
	return catcher{c.Handler.WithAttrs(as), c.attr, c.ch}
}

func (c catcher) WithGroup(name string) slog.Handler {
	return catcher{c.Handler.WithGroup(name), c.attr, c.ch}
}

// Scrape returns the body of GET url (a group's /metrics), failing the test unless it is
// answered 200.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// Metric returns the value of the first series of name in body (Prometheus's text format)
// whose labels include the given name/value pairs, and whether there is one.
func Metric(body, name string, labels ...string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series, all := line[:i], true
		for j := 0; j+1 < len(labels); j += 2 {
			all = all && strings.Contains(series, labels[j]+`="`+labels[j+1]+`"`)
		}
		if all {
			v, err := strconv.ParseFloat(line[i+1:], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// AtZero fails t unless body has a series of name at 0 for each value of the label key:
// a counter an alert takes increase() of must exist before its first increment.
func AtZero(t testing.TB, body, name, key string, values ...string) {
	t.Helper()
	for _, v := range values {
		if got, ok := Metric(body, name, key, v); !ok || got != 0 {
			t.Errorf("%s{%s=%q} = %g (present: %v) before anything happened, want a series at 0", name, key, v, got, ok)
		}
	}
}
