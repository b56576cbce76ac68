package analytics

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/testenv"
)

// dom is what the dashboard shows, read back from its DOM.
type dom struct {
	Tiles     map[string]string
	Events    []domPoint
	Success   []domPoint
	Delays    []domPoint
	Troubled  []domBar
	Rows      [][]string
	Platforms []string
	Boxes     map[string]float64 // rendered height of each chart
}

type domPoint struct {
	Series string
	Hour   string
	Value  float64
	Cy     float64
}

type domBar struct {
	Platform, Profile    string
	Failed, TokenExpired int64
	Width                float64
}

const readDOM = `(() => {
  const points = id => [...document.querySelectorAll('#' + id + ' circle')].map(c => ({
    Series: c.dataset.series, Hour: c.dataset.hour, Value: Number(c.dataset.value), Cy: Number(c.getAttribute('cy'))}));
  const boxes = {};
  for (const svg of document.querySelectorAll('svg.chart')) boxes[svg.id] = svg.getBoundingClientRect().height;
  return {
    Tiles: Object.fromEntries([...document.querySelectorAll('#totals .tile')].map(e => [e.dataset.metric, e.dataset.value])),
    Events: points('events'), Success: points('success'), Delays: points('delays'),
    Troubled: [...document.querySelectorAll('#troubled g.bar')].map(g => ({Platform: g.dataset.platform, Profile: g.dataset.profile,
      Failed: Number(g.dataset.failed), TokenExpired: Number(g.dataset.tokenExpired),
      Width: g.querySelector('rect.failed').getBoundingClientRect().width + g.querySelector('rect.expired').getBoundingClientRect().width})),
    Rows: [...document.querySelectorAll('#platforms tbody tr[data-platform]')].map(r => [...r.cells].map(c => c.textContent)),
    Platforms: [...document.querySelectorAll('#picker select option')].map(o => o.value),
    Boxes: boxes,
  };
})()`

// TestDashboardInChromium opens the dashboard in headless Chromium against a consumer fed
// with known events, reads every chart's numbers back from the DOM, picks a platform with
// the picker, checks that no request left loopback, and saves a screenshot.
func TestDashboardInChromium(t *testing.T) {
	chromium := testenv.Require(t, testenv.Chromium)
	dbtest.Run(t, func(t *testing.T, database string) {
		k := newTestKafka(t)
		const hours = 8
		events := knownEvents(1200, hours, 5)
		k.produce(t, events, 0)
		s := startService(t, k.config(database), Options{})
		waitCounted(t, openStore(t, database), k.ends(t))

		ctx, requests := browser(t, chromium)
		q := url.Values{"from": {hour0.Format(time.RFC3339)}, "to": {hour0.Add(hours * time.Hour).Format(time.RFC3339)}}
		if err := chromedp.Do(ctx, chromedp.Navigate("http://"+s.Addr()+"/analytics?"+q.Encode()), chromedp.WaitVisible("#events circle")); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[dom](readDOM))
		if err != nil {
			t.Fatal(err)
		}
		checkDashboard(t, got, events, hours)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, png, filepath.Base(t.Name()))

		// The picker: choosing a platform shows it alone (app.js submits the form).
		pick := `setTimeout(() => { const s = document.querySelector('#picker select'); s.value = 'tiktok'; s.dispatchEvent(new Event('change')); })`
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](pick)); err != nil {
			t.Fatal(err)
		}
		tiktok := readAfterNavigation(t, ctx, "platform=tiktok")
		want := expectIn(events, hour0, hour0.Add(hours*time.Hour), "tiktok").counts["tiktok"]
		if tiktok.Tiles["published"] != fmt.Sprint(want.Published) || tiktok.Tiles["failed"] != fmt.Sprint(want.Failed) || len(tiktok.Rows) != 1 {
			t.Errorf("after picking tiktok: tiles %v, rows %v; want published %d, failed %d", tiktok.Tiles, tiktok.Rows, want.Published, want.Failed)
		}
		checkLoopback(t, requests(), s.Addr())
	})
}

// readAfterNavigation waits until the tab shows a page whose query has want, then reads it.
func readAfterNavigation(t *testing.T, ctx context.Context, want string) dom {
	t.Helper()
	loaded := `location.search.includes(` + strconv.Quote(want) + `) && document.readyState === 'complete' && document.querySelector('#totals') !== null`
	for range 100 {
		// Errors are expected while the old page goes away.
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](loaded)); err == nil && ok {
			got, err := chromedp.Run(ctx, chromedp.Evaluate[dom](readDOM))
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the tab never showed a page with %q", want)
	return dom{}
}

// browser starts headless Chromium with a new profile and no network of its own, and
// returns a tab and the URLs of every request the tab has made so far.
func browser(t *testing.T, chromium string) (context.Context, func() []string) {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	var mu sync.Mutex
	var urls []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(urls)
	}
}

func checkDashboard(t *testing.T, got dom, events []event.Event, hours int) {
	t.Helper()
	all := expectIn(events, hour0, hour0.Add(time.Duration(hours)*time.Hour), "")
	var total struct{ published, failed, expired, retries int64 }
	for _, c := range all.counts {
		total.published += c.Published
		total.failed += c.Failed
		total.expired += c.TokenExpired
		total.retries += c.Retries
	}
	wantTiles := map[string]string{"published": fmt.Sprint(total.published), "failed": fmt.Sprint(total.failed),
		"token_expired": fmt.Sprint(total.expired), "retries": fmt.Sprint(total.retries),
		"success_rate": fmt.Sprintf("%.2f", 100*float64(total.published)/float64(total.published+total.failed+total.expired))}
	for metric, want := range wantTiles {
		if got.Tiles[metric] != want {
			t.Errorf("tile %s = %q, want %q", metric, got.Tiles[metric], want)
		}
	}
	delays := allDelays(all)
	for metric, q := range map[string]float64{"publish_delay_p50_ms": 0.5, "publish_delay_p95_ms": 0.95} {
		var v float64
		if _, err := fmt.Sscan(got.Tiles[metric], &v); err != nil || !closeTo(v, exactPercentile(delays, q)) {
			t.Errorf("tile %s = %q, want %.0f ±1%%", metric, got.Tiles[metric], exactPercentile(delays, q))
		}
	}
	for id, h := range got.Boxes {
		if h < 50 {
			t.Errorf("chart %s is %.0f px high: not rendered", id, h)
		}
	}
	if len(got.Boxes) != 4 {
		t.Errorf("charts %v, want events, success, delays and troubled", got.Boxes)
	}
	if slices.Compare(got.Platforms, []string{"", "instagram", "tiktok", Unknown, "youtube"}) != 0 {
		t.Errorf("picker offers %q", got.Platforms)
	}
	checkHourlyCharts(t, got, events, hours)
	checkTroubled(t, got.Troubled, events, hours)
}

func allDelays(e expectation) []int64 {
	var out []int64
	for _, d := range e.delays {
		out = append(out, d...)
	}
	slices.Sort(out)
	return out
}

// checkHourlyCharts compares each hour's point of the three line charts with the events of
// that hour, and checks that a larger number is drawn higher.
func checkHourlyCharts(t *testing.T, got dom, events []event.Event, hours int) {
	t.Helper()
	want := map[string]float64{} // "chart series hour" → value
	for h := range hours {
		from := hour0.Add(time.Duration(h) * time.Hour)
		e := expectIn(events, from, from.Add(time.Hour), "")
		hour := from.Format(time.RFC3339)
		var pub, outcomes int64
		for name, c := range e.counts {
			want["events "+name+" "+hour] = float64(c.Published + c.Failed + c.TokenExpired + c.Retries)
			pub += c.Published
			outcomes += c.Published + c.Failed + c.TokenExpired
		}
		want["success success rate "+hour] = 100 * float64(pub) / float64(outcomes)
		d := allDelays(e)
		want["delays p50 "+hour] = exactPercentile(d, 0.5)
		want["delays p95 "+hour] = exactPercentile(d, 0.95)
	}
	seen := 0
	for chart, points := range map[string][]domPoint{"events": got.Events, "success": got.Success, "delays": got.Delays} {
		for _, p := range points {
			key := chart + " " + p.Series + " " + p.Hour
			w, ok := want[key]
			switch {
			case !ok:
				t.Errorf("point %s = %v, which no event makes", key, p.Value)
			case chart == "delays" && !closeTo(p.Value, w):
				t.Errorf("point %s = %v, want %.0f ±1%%", key, p.Value, w)
			case chart == "success" && fmt.Sprintf("%.2f", w) != fmt.Sprintf("%.2f", p.Value):
				t.Errorf("point %s = %v, want %.2f", key, p.Value, w)
			case chart == "events" && p.Value != w:
				t.Errorf("point %s = %v, want %v", key, p.Value, w)
			}
			seen++
		}
		checkDrawnInOrder(t, chart, points)
	}
	if seen != len(want) {
		t.Errorf("the charts show %d points, want %d", seen, len(want))
	}
}

func checkDrawnInOrder(t *testing.T, chart string, points []domPoint) {
	t.Helper()
	for _, a := range points {
		for _, b := range points {
			if a.Value > b.Value && a.Cy >= b.Cy {
				t.Errorf("%s: %v is drawn at y=%v, not above %v at y=%v", chart, a.Value, a.Cy, b.Value, b.Cy)
				return
			}
		}
	}
}

func checkTroubled(t *testing.T, got []domBar, events []event.Event, hours int) {
	t.Helper()
	type key struct{ platform, profile string }
	sums := map[key]*domBar{}
	for i := range events {
		ev := &events[i]
		if ev.OccurredAt.After(hour0.Add(time.Duration(hours)*time.Hour)) || (ev.Type != event.PostFailed && ev.Type != event.PostTokenExpired) {
			continue
		}
		k := key{platformOf(ev), *ev.ProfileName}
		if sums[k] == nil {
			sums[k] = &domBar{Platform: k.platform, Profile: k.profile}
		}
		if ev.Type == event.PostFailed {
			sums[k].Failed++
		} else {
			sums[k].TokenExpired++
		}
	}
	var want []domBar
	for _, b := range sums {
		want = append(want, *b)
	}
	slices.SortFunc(want, func(a, b domBar) int {
		if d := (b.Failed + b.TokenExpired) - (a.Failed + a.TokenExpired); d != 0 {
			return int(d)
		}
		return strings.Compare(a.Platform+"/"+a.Profile, b.Platform+"/"+b.Profile)
	})
	want = want[:min(len(want), troubledProfiles)]
	if len(got) != len(want) {
		t.Fatalf("troubled profiles: %d bars, want %d", len(got), len(want))
	}
	for i := range want {
		g := got[i]
		if g.Platform != want[i].Platform || g.Profile != want[i].Profile || g.Failed != want[i].Failed || g.TokenExpired != want[i].TokenExpired {
			t.Errorf("troubled #%d: %+v, want %+v", i+1, g, want[i])
		}
		if i > 0 && g.Width > got[i-1].Width+0.5 {
			t.Errorf("troubled #%d is drawn longer (%v px) than #%d (%v px)", i+1, g.Width, i, got[i-1].Width)
		}
	}
}

// checkLoopback fails the test if any request went to a host other than loopback, and checks
// that the page and its assets were among them, so that the recording is known to work.
func checkLoopback(t *testing.T, urls []string, addr string) {
	t.Helper()
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to %q: %v", raw, err)
			continue
		}
		if u.Scheme == "data" || u.Scheme == "about" {
			continue
		}
		ip := net.ParseIP(u.Hostname())
		if ip == nil || !ip.IsLoopback() {
			t.Errorf("request left loopback: %s", raw)
		}
	}
	for _, path := range []string{"/analytics?", "/analytics/assets/style.css", "/analytics/assets/app.js"} {
		if !slices.ContainsFunc(urls, func(u string) bool { return strings.HasPrefix(u, "http://"+addr+path) }) {
			t.Errorf("no request for %s among %q", path, urls)
		}
	}
	t.Logf("%d requests, all to loopback", len(urls))
}

// saveScreenshot writes png to the test's artifact folder (kept with go test -artifacts) and
// to testdata/out/, which git ignores.
func saveScreenshot(t *testing.T, png []byte, name string) {
	t.Helper()
	for _, dir := range []string{t.ArtifactDir(), filepath.Join("testdata", "out")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "dashboard-"+name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}
