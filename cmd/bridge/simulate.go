package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/sender"
)

// simulateFlags are the settings of one `bridge simulate` run.
type simulateFlags struct {
	config, source, url string
	count, concurrency  int
	rate                float64
	duplicates, bad     float64
	quiet               bool
}

func simulateCommand() *cobra.Command {
	var f simulateFlags
	cmd := &cobra.Command{
		Use:   "simulate EVENT [flags]",
		Short: "Send realistic signed deliveries of an event type, as the source's provider does, and check the answers",
		Long: `Send realistic deliveries of EVENT (e.g. post.published, or "all" for every type the
provider sends) in the source's provider format, signed as the provider signs them, and
print each answer and a summary by status. Redeliveries (--duplicates) re-send an earlier
delivery byte for byte and must be answered "duplicate"; tampered ones (--bad-signatures)
must be answered 401. Exits 1 when any answer is not what it should be.

Without --config it targets ` + "`bridge dev`" + `: source codivupload with the dev secret, at
http://127.0.0.1:8080.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSimulation(args[0], f, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			return s.run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "take the source's provider and secret, and the URL, from this configuration file")
	fl.StringVar(&f.source, "source", "", "the source to send to (default: the first of the file, or codivupload without --config)")
	fl.StringVar(&f.url, "url", "", "the bridge's base URL (default: from the file's http.listen, else http://127.0.0.1:8080)")
	fl.IntVar(&f.count, "count", 1, "how many deliveries to send")
	fl.Float64Var(&f.rate, "rate", 0, "deliveries per second (0: as fast as --concurrency allows)")
	fl.Float64Var(&f.duplicates, "duplicates", 0, "share of deliveries that re-send an earlier one byte for byte (0 to 1)")
	fl.Float64Var(&f.bad, "bad-signatures", 0, "share of deliveries tampered after signing, which must get 401 (0 to 1)")
	fl.IntVar(&f.concurrency, "concurrency", 1, "deliveries in flight at once")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only unexpected answers and the summary")
	return cmd
}

// simulation is one run of `bridge simulate`.
type simulation struct {
	simulateFlags
	src   sender.Source
	base  string
	types []string
	run1  string // random part of this run's event ids, so runs never collide
	cl    *http.Client
	out   io.Writer
	outMu sync.Mutex
	pool  redeliveries
	tally tally
}

func newSimulation(eventType string, f simulateFlags, out io.Writer) (*simulation, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	src, base, err := simulateTarget(f)
	if err != nil {
		return nil, err
	}
	types := []string{eventType}
	if eventType == "all" {
		types = src.Types()
	} else if !src.Sends(eventType) {
		return nil, fmt.Errorf("simulate: provider %s does not send %q (it sends: %s, or all): %w",
			src.Provider, eventType, strings.Join(src.Types(), ", "), errUsage)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = f.concurrency
	return &simulation{simulateFlags: f, src: src, base: base, types: types, run1: randomHex(4), out: out,
		cl: &http.Client{Transport: tr, Timeout: 60 * time.Second}}, nil
}

func (f simulateFlags) validate() error {
	switch {
	case f.count < 1:
		return fmt.Errorf("simulate: --count must be at least 1: %w", errUsage)
	case f.concurrency < 1:
		return fmt.Errorf("simulate: --concurrency must be at least 1: %w", errUsage)
	case f.rate < 0:
		return fmt.Errorf("simulate: --rate must not be negative: %w", errUsage)
	case f.duplicates < 0 || f.bad < 0 || f.duplicates+f.bad > 1 || f.duplicates >= 1:
		return fmt.Errorf("simulate: --duplicates and --bad-signatures are shares: each at least 0, together at most 1, --duplicates below 1: %w", errUsage)
	}
	return nil
}

// simulateTarget resolves the source and base URL: from the file when --config is given,
// else the source of `bridge dev`.
func simulateTarget(f simulateFlags) (sender.Source, string, error) {
	if f.config == "" {
		if f.source != "" && f.source != "codivupload" {
			return sender.Source{}, "", fmt.Errorf("simulate: without --config only bridge dev's source codivupload is known; give --config for %q: %w", f.source, errUsage)
		}
		src, err := sender.NewSource("codivupload", "codivupload", devSecret)
		return src, cmp.Or(f.url, "http://"+devIngress), err
	}
	cfg, err := config.LoadFor(f.config, config.Sender)
	if err != nil {
		return sender.Source{}, "", err
	}
	s, err := configSource(cfg, f.source)
	if err != nil {
		return sender.Source{}, "", err
	}
	src, err := sender.NewConfiguredSource(s.Name, s.Provider, s.Secrets[0], s.Settings())
	return src, cmp.Or(f.url, listenURL(cfg.HTTP)), err
}

func configSource(cfg config.Config, name string) (config.Source, error) {
	if name == "" {
		return cfg.Sources[0], nil // Load refuses a file without sources
	}
	i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == name })
	if i < 0 {
		names := make([]string, len(cfg.Sources))
		for j, s := range cfg.Sources {
			names[j] = s.Name
		}
		return config.Source{}, fmt.Errorf("simulate: no source %q in the file (it has: %s): %w", name, strings.Join(names, ", "), errUsage)
	}
	return cfg.Sources[i], nil
}

// listenURL is the URL a client on the same machine reaches http.listen at: a wildcard
// host (":8080", "0.0.0.0:8080") is reached on loopback.
func listenURL(h config.HTTP) string {
	host, port, _ := net.SplitHostPort(h.Listen) // validated by config
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if h.TLS.Enabled() {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// kind is what one delivery of the run is, and so which answer it must get.
type kind uint8

const (
	fresh     kind = iota // a new event: 200 accepted
	redeliver             // an earlier delivery again, byte for byte: 200 duplicate
	forged                // tampered after signing: 401
)

func (k kind) String() string { return [...]string{"new", "redelivery", "bad-signature"}[k] }

// plan lays out the kinds of the run's deliveries: exactly the asked shares, in random
// order, starting with a new event so that a redelivery has something to repeat.
func (s *simulation) plan() []kind {
	p := make([]kind, s.count)
	nbad := int(float64(s.count)*s.bad + 0.5)
	ndup := min(int(float64(s.count)*s.duplicates+0.5), s.count-nbad)
	for i := range nbad {
		p[i] = forged
	}
	for i := nbad; i < nbad+ndup; i++ {
		p[i] = redeliver
	}
	rand.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	if first := slices.Index(p, fresh); first > 0 {
		p[0], p[first] = p[first], p[0]
	}
	return p
}

type job struct {
	n    int
	kind kind
}

// run sends the planned deliveries at the asked rate and concurrency, then prints the
// summary. It fails when an answer was not the one its delivery must get.
func (s *simulation) run(ctx context.Context) error {
	limit := rate.NewLimiter(rate.Inf, 0)
	if s.rate > 0 {
		limit = rate.NewLimiter(rate.Limit(s.rate), 1)
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range s.concurrency {
		wg.Go(func() {
			for j := range jobs {
				s.deliver(ctx, j)
			}
		})
	}
	start := time.Now()
	err := s.dispatch(ctx, limit, jobs)
	close(jobs)
	wg.Wait()
	s.tally.print(s.out, time.Since(start), s.base+"/webhooks/"+s.src.Name)
	if err != nil {
		return fmt.Errorf("simulate: stopped after %d deliveries: %w", s.tally.total(), err)
	}
	if bad := s.tally.unexpected(); bad > 0 {
		return fmt.Errorf("simulate: %d of %d answers were not what they should be", bad, s.tally.total())
	}
	return nil
}

func (s *simulation) dispatch(ctx context.Context, limit *rate.Limiter, jobs chan<- job) error {
	for n, k := range s.plan() {
		if err := limit.Wait(ctx); err != nil {
			return err
		}
		select {
		case jobs <- job{n, k}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// deliver sends one delivery of the plan and records its answer.
func (s *simulation) deliver(ctx context.Context, j job) {
	now := time.Now()
	typ := s.types[j.n%len(s.types)]
	var d providers.Delivery
	ok := false
	if j.kind == redeliver {
		var earlier string
		if d, earlier, ok = s.pool.pick(now); ok {
			typ = earlier
		} else {
			j.kind = fresh // nothing accepted yet to repeat (the first deliveries are in flight)
		}
	}
	if !ok {
		var err error
		if d, err = s.src.Sample(typ, fmt.Sprintf("evt_sim_%s_%d", s.run1, j.n+1), j.n, now); err != nil {
			s.record(j.kind, typ, sender.Answer{}, err)
			return
		}
	}
	sent := d
	if j.kind == forged {
		sent = sender.Tamper(d)
	}
	a, err := sender.Post(ctx, s.cl, s.base, s.src.Name, sent)
	if j.kind == fresh && err == nil && a.Code == http.StatusOK && a.Status == "accepted" {
		s.pool.add(d, typ, now)
	}
	s.record(j.kind, typ, a, err)
}

func (s *simulation) record(k kind, typ string, a sender.Answer, err error) {
	ok := err == nil && expected(k, a)
	s.tally.add(outcome(a, err), ok)
	if s.quiet && ok {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	mark := ""
	if !ok {
		mark = "  UNEXPECTED, want " + want(k)
	}
	if err != nil {
		fmt.Fprintf(s.out, "%-18s %-13s → error: %v%s\n", typ, k, err, mark)
		return
	}
	fmt.Fprintf(s.out, "%-18s %-13s → %d %s%s\n", typ, k, a.Code, strings.TrimSpace(string(a.Body)), mark)
}

func expected(k kind, a sender.Answer) bool {
	switch k {
	case redeliver:
		return a.Code == http.StatusOK && a.Status == "duplicate"
	case forged:
		return a.Code == http.StatusUnauthorized
	}
	return a.Code == http.StatusOK && a.Status == "accepted"
}

func want(k kind) string {
	return [...]string{`200 "accepted"`, `200 "duplicate"`, "401"}[k]
}

// outcome is the line of the summary an answer counts under, e.g. `200 accepted`, `401`.
func outcome(a sender.Answer, err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case err != nil:
		return "no answer"
	case a.Status != "" && a.Code < 300:
		return fmt.Sprintf("%d %s", a.Code, a.Status)
	}
	return fmt.Sprintf("%d", a.Code)
}
