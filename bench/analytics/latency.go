package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// latencyResult is the timing of one query on one database.
type latencyResult struct {
	db, query string
	ms        []float64
}

func (l latencyResult) quantile(q float64) float64 {
	s := slices.Clone(l.ms)
	slices.Sort(s)
	return s[int(math.Ceil(q*float64(len(s))))-1]
}

// monthData says what the latency phase stored.
type monthData struct {
	db             string
	records, hours int
	rows           int64
	fillSeconds    float64
}

// latency fills a fresh database of each kind with o.days of hourly aggregates and times
// the summary and the dashboard over them through the consumer's HTTP server.
func latency(ctx context.Context, o options, dbs []database, r *report) error {
	end := time.Now().UTC().Truncate(time.Hour)
	start := end.Add(-time.Duration(o.days) * 24 * time.Hour)
	for _, db := range dbs {
		dsn, err := db.fresh(ctx)
		if err != nil {
			return err
		}
		data, err := fill(ctx, dsn, start, o)
		if err != nil {
			return fmt.Errorf("%s: fill: %w", db.kind, err)
		}
		data.db = db.kind
		r.months = append(r.months, data)
		res, err := timeQueries(ctx, dsn, o, start, end)
		if err != nil {
			return fmt.Errorf("%s: %w", db.kind, err)
		}
		for i := range res {
			res[i].db = db.kind
		}
		r.latencies = append(r.latencies, res...)
	}
	return nil
}

// fill stores, for every hour, platform and profile: two published posts with their delays,
// and a failure, a retry and a token expiry with probabilities .3, .2 and .05.
func fill(ctx context.Context, dsn string, start time.Time, o options) (monthData, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return monthData{}, err
	}
	defer st.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	began := time.Now()
	d := monthData{hours: o.days * 24, rows: int64(o.days * 24 * o.platforms * o.profiles)}
	var batch []store.Record
	add := func(kind store.Kind, at time.Time, platform, profile string, delay int64) {
		batch = append(batch, store.Record{Offset: int64(d.records), Kind: kind, OccurredAt: at,
			Platform: platform, Profile: profile, DelayMs: delay, HasDelay: kind == store.Published})
		d.records++
	}
	for h := range d.hours {
		at := start.Add(time.Duration(h) * time.Hour)
		for p := range o.platforms {
			platform := fmt.Sprintf("platform-%d", p)
			for q := range o.profiles {
				profile := fmt.Sprintf("profile-%03d", q)
				for range 2 {
					add(store.Published, at, platform, profile, int64(math.Exp(rng.NormFloat64()*1.5+9)))
				}
				for _, k := range []struct {
					kind store.Kind
					p    float64
				}{{store.Failed, .3}, {store.Retry, .2}, {store.TokenExpired, .05}} {
					if rng.Float64() < k.p {
						add(k.kind, at, platform, profile, 0)
					}
				}
			}
		}
		if len(batch) >= 50_000 || h == d.hours-1 {
			if err := applyBatch(ctx, st, batch); err != nil {
				return d, err
			}
			batch = batch[:0]
		}
	}
	d.fillSeconds = time.Since(began).Seconds()
	return d, nil
}

func applyBatch(ctx context.Context, st *store.Store, batch []store.Record) error {
	tx, err := st.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	run := store.Run{TP: store.TP{Topic: "fill"}, From: batch[0].Offset, Records: batch}
	if _, err := tx.Apply(ctx, []store.Run{run}); err != nil {
		return err
	}
	return tx.Commit()
}

// timeQueries serves the filled database with the consumer (on topics that do not exist, so
// it only serves) and times each query o.requests times after one untimed request.
func timeQueries(ctx context.Context, dsn string, o options, start, end time.Time) ([]latencyResult, error) {
	cfg := benchConfig(o.brokers, fmt.Sprintf("abenchq%d.", time.Now().UnixNano()))
	cfg.Consumers.Analytics.Database = dsn
	s, err := analytics.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), analytics.Options{})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { stop(); <-done }()
	month := url.Values{"from": {start.Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}}
	onePlatform := url.Values{"from": {start.Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}, "platform": {"platform-0"}}
	day := url.Values{"from": {end.Add(-24 * time.Hour).Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}}
	dash := url.Values{"from": {end.Add(-30 * 24 * time.Hour).Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}}
	var out []latencyResult
	for _, q := range []struct{ name, path string }{
		{fmt.Sprintf("summary, %d days, all platforms", o.days), "/analytics/api/summary?" + month.Encode()},
		{fmt.Sprintf("summary, %d days, one platform", o.days), "/analytics/api/summary?" + onePlatform.Encode()},
		{"summary, last 24 hours", "/analytics/api/summary?" + day.Encode()},
		{"dashboard page, 30 days", "/analytics?" + dash.Encode()},
	} {
		res, err := timeGet(ctx, "http://"+s.Addr()+q.path, o.requests)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
		res.query = q.name
		out = append(out, res)
	}
	return out, nil
}

func timeGet(ctx context.Context, u string, n int) (latencyResult, error) {
	c := &http.Client{Timeout: time.Minute}
	var res latencyResult
	for i := range n + 1 {
		began := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return res, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return res, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return res, fmt.Errorf("GET %s: %d %v", u, resp.StatusCode, err)
		}
		if i > 0 { // the first warms the caches
			res.ms = append(res.ms, float64(time.Since(began).Microseconds())/1000)
		}
	}
	return res, nil
}
