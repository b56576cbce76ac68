package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/internal/redrive"
)

// runRetries runs the retries group, whose /metrics also tells of its dead-letter topic:
// how many records it holds, how many were redriven, how many wait and for how long.
func runRetries(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	m, err := retries.New(ctx, cfg, log, retries.Options{})
	if err != nil {
		return err
	}
	m.Registry.MustRegister(redrive.NewDLQMetrics(cfg.Kafka, log))
	return m.Run(ctx)
}

// dlqFlags are the settings of one `bridge dlq` command.
type dlqFlags struct {
	config, errCode, since string
	ids                    []string
	json, all, dryRun      bool
}

func dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq list|redrive --config FILE",
		Short: "List the retries group's dead-letter topic, and redrive its records",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(dlqListCommand(), dlqRedriveCommand())
	return cmd
}

func dlqListCommand() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "list --config FILE [--json] [--error CODE] [--since DURATION] [--id EVENT_ID ...]",
		Short: "Print the records of {prefix}post.failed.dlq, and whether each was redriven",
		Long: `Print each committed record of the dead-letter topic {prefix}post.failed.dlq: its event id,
the failed post's error code, the retry calls made, where it entered the retries group, its
offset, when it was dead-lettered, why, and whether it was redriven. With --json, one JSON
object a line:
  {"event_id","error","attempts","origin_topic","origin_offset","dlq_offset",
   "dead_lettered_at","redriven","dlq_partition","origin_partition","reason"}
(and "redriven_from_offset" for a record that failed again after a redrive).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return dlqList(cmd, f, args)
		},
	}
	dlqFilterFlags(cmd, &f)
	cmd.Flags().BoolVar(&f.json, "json", false, "one JSON object a line instead of a table")
	return cmd
}

func dlqRedriveCommand() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "redrive --config FILE (--id EVENT_ID ... | --all) [--error CODE] [--since DURATION] [--dry-run]",
		Short: "Move dead-lettered records back to {prefix}post.failed.retry.1, once each",
		Long: `Move each chosen record of {prefix}post.failed.dlq that was not redriven before to
{prefix}post.failed.retry.1, due at once, with the header retry-redriven-from-offset; the
retries group then calls the action again, with the same Idempotency-Key. Prints
{"redriven":N,"skipped":M}: M chosen records were redriven before.

Each record is redriven once, even when two redrives run at once or one was killed midway:
the moves are committed in Kafka transactions together with marks in
{prefix}post.failed.dlq.redriven, under one transactional id that each redrive takes before
it reads the marks. A redrive that another has taken over stops with an error, keeping what
it committed. --dry-run prints what it would do, a JSON line per chosen record, and changes
nothing (it does not disturb a redrive in progress).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return dlqRedrive(cmd, f, args)
		},
	}
	dlqFilterFlags(cmd, &f)
	fl := cmd.Flags()
	fl.BoolVar(&f.all, "all", false, "redrive every record the other flags match")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be done, and change nothing")
	return cmd
}

func dlqFilterFlags(cmd *cobra.Command, f *dlqFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the configuration file (YAML): its kafka and schema_registry sections")
	fl.StringArrayVar(&f.ids, "id", nil, "only the records of this event id (repeat the flag, or list more ids after it)")
	fl.StringVar(&f.errCode, "error", "", "only the records whose failed post has this error code (any case)")
	fl.StringVar(&f.since, "since", "", "only the records dead-lettered within this long before now (90m, 24h, 7d)")
}

// dlqSetup loads the file and the filter shared by list and redrive.
func dlqSetup(cmd *cobra.Command, f dlqFlags, args []string) (*redrive.DLQ, redrive.Filter, error) {
	filter, err := operatorFilter(cmd.Name(), f, args)
	if err != nil {
		return nil, filter, err
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, filter, err
	}
	d, err := redrive.NewDLQ(cfg, newLogger(cfg.Log, cmd.ErrOrStderr()).With("command", "dlq "+cmd.Name()))
	return d, filter, err
}

// operatorFilter reads the filter flags of a dlq or quarantine command: more ids may follow
// --id as arguments.
func operatorFilter(name string, f dlqFlags, args []string) (redrive.Filter, error) {
	if f.config == "" {
		return redrive.Filter{}, fmt.Errorf("%s needs --config FILE: %w", name, errUsage)
	}
	if len(args) > 0 && len(f.ids) == 0 {
		return redrive.Filter{}, fmt.Errorf("%s: unexpected argument %q (event ids follow --id): %w", name, args[0], errUsage)
	}
	since, err := parseAge(f.since)
	if err != nil {
		return redrive.Filter{}, fmt.Errorf("%s: --since: %v: %w", name, err, errUsage)
	}
	return redrive.Filter{IDs: append(f.ids, args...), Error: f.errCode, Since: since}, nil
}

// parseAge reads a Go duration, or a whole number of days ("7d").
func parseAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration like 90m, 24h or 7d, got %q", s)
	}
	return d, nil
}

func dlqList(cmd *cobra.Command, f dlqFlags, args []string) error {
	d, filter, err := dlqSetup(cmd, f, args)
	if err != nil {
		return err
	}
	es, err := d.List(cmd.Context(), filter)
	return printList(cmd, "dlq list", f.json, es, err, dlqTable)
}

func dlqRedrive(cmd *cobra.Command, f dlqFlags, args []string) error {
	if f.all == (len(f.ids) > 0) {
		return fmt.Errorf("redrive needs either --id EVENT_ID ... or --all: %w", errUsage)
	}
	d, filter, err := dlqSetup(cmd, f, args)
	if err != nil {
		return err
	}
	res, steps, err := d.Redrive(cmd.Context(), filter, f.dryRun)
	return printRun(cmd, "dlq redrive", f.dryRun, res, steps, err)
}

// printList prints what list or its error, as JSON lines or as table draws them; the dlq
// and quarantine commands share it.
func printList[E any](cmd *cobra.Command, what string, asJSON bool, es []E, err error, table func(io.Writer, []E, time.Time) error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if asJSON {
		return jsonLines(cmd.OutOrStdout(), es)
	}
	return table(cmd.OutOrStdout(), es, time.Now())
}

// printRun prints a redrive's or replay's steps (a dry run's) and its result; the first
// error, of the run or of printing, is the command's.
func printRun[S any](cmd *cobra.Command, what string, dryRun bool, res any, steps []S, err error) error {
	out := cmd.OutOrStdout()
	if dryRun && err == nil {
		err = jsonLines(out, steps)
	}
	if perr := printResult(out, res, dryRun); err == nil {
		err = perr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// printResult prints a run's result, marked as a dry run's.
func printResult(w io.Writer, res any, dryRun bool) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if dryRun {
		b = append(b[:len(b)-1], `,"dry_run":true}`...)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// jsonLines prints each element of vs as one JSON line.
func jsonLines[T any](w io.Writer, vs []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range vs {
		if err := enc.Encode(&vs[i]); err != nil {
			return err
		}
	}
	return nil
}

func dlqTable(w io.Writer, es []redrive.Entry, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOFFSET\tEVENT ID\tERROR\tATTEMPTS\tDEAD-LETTERED\tREDRIVEN\tREASON")
	for _, e := range es {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s ago\t%s\t%s\n", e.DLQPartition, e.DLQOffset, e.EventID,
			orDash(e.Error), orDash(itoa(e.Attempts)), now.Sub(e.DeadLetteredAt).Round(time.Second), yesNo(e.Redriven), oneLine(e.Reason, 80))
	}
	if len(es) == 0 {
		fmt.Fprintln(tw, "(no records)")
	}
	return tw.Flush()
}

func orDash(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func itoa(n *int) *string {
	if n == nil {
		return nil
	}
	s := strconv.Itoa(*n)
	return &s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine is s on one line, cut to at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
