package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
)

// devArgs run bridge dev with every part on a free port, so that tests (and other
// worktrees' tests) never collide on the default ports.
var devArgs = []string{"dev", "--listen", "127.0.0.1:0", "--dashboard-listen", "127.0.0.1:0",
	"--retries-listen", "127.0.0.1:0", "--alerts-listen", "127.0.0.1:0", "--standins-listen", "127.0.0.1:0"}

// startDev runs bridge dev until the test ends and waits for its welcome. stop ends it and
// returns its error.
func startDev(t *testing.T) (stdout, stderr *testkit.LogBuffer, stop func() error) {
	t.Helper()
	stdout, stderr = &testkit.LogBuffer{}, &testkit.LogBuffer{}
	stop = runInBackground(t, devArgs, stdout, stderr)
	testkit.Eventually(t, time.Minute, "dev prints its welcome", func() bool { return strings.Contains(stdout.String(), "Ctrl-C") },
		func() string { return stdout.String() + stderr.String() })
	return stdout, stderr, stop
}

// printedCommands are the commands of the welcome's "Try next", as printed.
func printedCommands(t *testing.T, welcome string) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^  go run \./cmd/bridge (.+)$`).FindAllStringSubmatch(welcome, -1) {
		out = append(out, m[1])
	}
	return out
}

// runPrinted runs a printed command in this process and returns its output.
func runPrinted(t *testing.T, command string) string {
	t.Helper()
	var out testkit.LogBuffer
	if err := run(t.Context(), strings.Fields(command), &out, io.Discard); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out.String())
	}
	return out.String()
}

// TestDevPrintsAWorkingCurl runs the README's run command and sends the request it prints.
func TestDevPrintsAWorkingCurl(t *testing.T) {
	stdout, _, _ := startDev(t)
	out := stdout.String()
	url := regexp.MustCompile(`curl -sS -X POST (\S+)`).FindStringSubmatch(out)
	body := regexp.MustCompile(`--data-raw '([^']+)'`).FindStringSubmatch(out)
	if url == nil || body == nil {
		t.Fatalf("no curl in:\n%s", out)
	}
	h := http.Header{}
	for _, m := range regexp.MustCompile(`-H '([^:]+): ([^']+)'`).FindAllStringSubmatch(out, -1) {
		h.Set(m[1], m[2])
	}
	code, answer := post(t, url[1], h, body[1])
	if code != 200 || !strings.Contains(answer, `"status":"accepted"`) {
		t.Fatalf("the printed curl was answered %d %s", code, answer)
	}
	if code, answer = post(t, url[1], h, body[1]); !strings.Contains(answer, `"status":"duplicate"`) {
		t.Fatalf("sent again: %d %s", code, answer)
	}
}

// TestDevPrintsCommandsThatWork runs the simulate and tail commands bridge dev prints, as
// printed: every answer is as expected, and tail shows each accepted event once.
func TestDevPrintsCommandsThatWork(t *testing.T) {
	stdout, _, _ := startDev(t)
	commands := printedCommands(t, stdout.String())
	want := []string{"simulate post.failed", "simulate post.token_expired", "simulate all ", "tail "}
	if len(commands) != len(want) {
		t.Fatalf("want %d commands (%q) in:\n%s", len(want), want, stdout.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(commands[i], w) {
			t.Fatalf("command %d is %q, want %q…", i, commands[i], w)
		}
	}
	accepted := 0
	for _, c := range commands[:3] {
		accepted += summary(t, runPrinted(t, c))["200 accepted"]
	}
	tailed := runPrinted(t, commands[3])
	if lines := parseTail(t, tailed); accepted < 12 || len(lines) != accepted {
		t.Fatalf("simulate accepted %d, tail printed %d records:\n%s", accepted, len(lines), tailed)
	}
}

var (
	welcomeDashboard = regexp.MustCompile(`then open the dashboard: (http://\S+/analytics)`)
	welcomeSQLite    = regexp.MustCompile(`SQLite (\S+), removed at exit`)
	acceptedID       = regexp.MustCompile(`"event_id":"(evt_sim_[^"]+)"`)
)

// TestDevRunsTheWholeProduct follows the welcome's guide: a simulated failed post reaches
// the retry API stand-in (answered 503 once, then again from the delay topic with the same
// Idempotency-Key), an expired token reaches the Slack stand-in, and the printed dashboard
// counts both. Then Ctrl-C stops every part cleanly and removes the SQLite file.
func TestDevRunsTheWholeProduct(t *testing.T) {
	stdout, stderr, stop := startDev(t)
	commands := printedCommands(t, stdout.String())
	if len(commands) < 2 || !strings.HasPrefix(commands[0], "simulate post.failed") || !strings.HasPrefix(commands[1], "simulate post.token_expired") {
		t.Fatalf("no simulate post.failed and post.token_expired in:\n%s", stdout.String())
	}
	failed := acceptedID.FindStringSubmatch(runPrinted(t, commands[0]))
	expired := acceptedID.FindStringSubmatch(runPrinted(t, commands[1]))
	if failed == nil || expired == nil {
		t.Fatal("simulate printed no accepted event id")
	}

	key := "idempotency_key=" + failed[1]
	calls := regexp.MustCompile(`msg="retry API stand-in received a call, answered (\d+)[^"]*" part=standins method=POST path=/v1/posts/post_\w+/retry-failed ` + regexp.QuoteMeta(key) + `\n`)
	testkit.Eventually(t, time.Minute, "the retry API stand-in answers "+failed[1]+" 503 then 200",
		func() bool { return len(calls.FindAllString(stderr.String(), -1)) >= 2 }, stderr.String)
	if got := calls.FindAllStringSubmatch(stderr.String(), -1); len(got) != 2 || got[0][1] != "503" || got[1][1] != "200" {
		t.Fatalf("the retry API stand-in's calls of %s: %q\n%s", failed[1], got, stderr.String())
	}
	testkit.Eventually(t, time.Minute, "the Slack stand-in receives the alert", func() bool {
		return regexp.MustCompile(`msg="Slack stand-in received a message, answered ok" part=standins text="[^"]*Token expired: \w+ on \w+`).MatchString(stderr.String())
	}, stderr.String)

	dashboard := welcomeDashboard.FindStringSubmatch(stdout.String())
	if dashboard == nil {
		t.Fatalf("no dashboard URL in:\n%s", stdout.String())
	}
	if code, page := get(t, dashboard[1]); code != 200 || !strings.Contains(page, "<html") {
		t.Fatalf("the dashboard answered %d:\n%.300s", code, page)
	}
	var sum struct {
		Totals struct {
			Failed       int `json:"failed"`
			TokenExpired int `json:"token_expired"`
		} `json:"totals"`
	}
	testkit.Eventually(t, time.Minute, "the summary counts the failure and the expiry", func() bool {
		_, body := get(t, dashboard[1]+"/api/summary")
		sum.Totals.Failed, sum.Totals.TokenExpired = 0, 0
		_ = json.Unmarshal([]byte(body), &sum)
		return sum.Totals.Failed == 1 && sum.Totals.TokenExpired == 1
	}, func() string { _, body := get(t, dashboard[1]+"/api/summary"); return body })

	sqlite := welcomeSQLite.FindStringSubmatch(stdout.String())
	if err := stop(); err != nil {
		t.Fatalf("dev did not stop cleanly: %v\n%s", err, stderr.String())
	}
	for _, group := range []string{"social.retries", "social.alerts"} {
		if !strings.Contains(stderr.String(), `msg="leaving the group" part=`+strings.TrimPrefix(group, "social.")+` group=`+group+` err=<nil>`) {
			t.Errorf("%s did not leave its group cleanly:\n%s", group, stderr.String())
		}
	}
	if sqlite == nil {
		t.Fatal("no SQLite path in the welcome")
	}
	if _, err := os.Stat(sqlite[1]); !os.IsNotExist(err) {
		t.Errorf("the SQLite file %s is still there after dev stopped: %v", sqlite[1], err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDevStopsWhenAPartCannotStart: a consumer that cannot listen stops dev as a whole,
// with the reason, before any welcome claims that everything runs.
func TestDevStopsWhenAPartCannotStart(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	args := slices.Clone(devArgs)
	args[slices.Index(args, "--retries-listen")+1] = taken.Addr().String()
	var stdout, stderr testkit.LogBuffer
	done := make(chan error, 1)
	go func() { done <- run(t.Context(), args, &stdout, &stderr) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("dev did not stop within a minute:\n%s%s", stdout.String(), stderr.String())
	}
	if err == nil || !strings.Contains(err.Error(), "retries consumer") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("dev ended with %v", err)
	}
	if strings.Contains(stdout.String(), "is ready") {
		t.Fatalf("dev welcomed the user although the retries consumer failed:\n%s", stdout.String())
	}
}
