package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/redrive"
)

func quarantineCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine list|replay --config FILE",
		Short: "List the deliveries the bridge quarantined, and replay those today's presets can read",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(quarantineListCommand(), quarantineReplayCommand())
	return cmd
}

func quarantineListCommand() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "list --config FILE [--json] [--id EVENT_ID ...] [--since DURATION]",
		Short: "Print the deliveries of {prefix}deadletter, and what today's presets make of each",
		Long: `Print each delivery of the quarantine topic {prefix}deadletter: where it is, its source and
provider, why it was quarantined, when it came, whether it was replayed, and, normalized
again with the presets as configured today, the events it now gives or why it still does
not normalize. With --json, one JSON object a line:
  {"partition","offset","source","provider","reason","received_at","bytes","replayed",
   "normalizes","events":[{"event_id","event_type"}],"problem"}`,
		RunE: func(cmd *cobra.Command, args []string) error { return quarantineList(cmd, f, args) },
	}
	quarantineFlags(cmd, &f)
	cmd.Flags().BoolVar(&f.json, "json", false, "one JSON object a line instead of a table")
	return cmd
}

func quarantineReplayCommand() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "replay --config FILE (--id EVENT_ID ... | --all) [--since DURATION] [--dry-run]",
		Short: "Normalize quarantined deliveries again and produce those that now normalize, once each",
		Long: `Normalize each chosen delivery of {prefix}deadletter again with today's presets (it was
verified when it was received), and produce the events of those that now normalize to
their topics, deduplicated by (source, event id) as any delivery is: an event the bridge
accepted within its source's dedup window is not produced again. Prints
{"replayed":N,"skipped":M}: M chosen deliveries were replayed before, still do not
normalize, carry no event, or hold only events already accepted. --id chooses the
deliveries by the event ids they normalize to today.

Each delivery is replayed once, even when two replays run at once or one was killed
midway: the events are produced in Kafka transactions together with marks in
{prefix}deadletter.replayed, under one transactional id that each replay takes before it
reads the marks. With dedup.store: memory, see docs/consumers.md ("Dead letters and quarantine") for the one case it
cannot deduplicate. --dry-run prints what it would do, a JSON line per chosen delivery,
and changes nothing.`,
		RunE: func(cmd *cobra.Command, args []string) error { return quarantineReplay(cmd, f, args) },
	}
	quarantineFlags(cmd, &f)
	fl := cmd.Flags()
	fl.BoolVar(&f.all, "all", false, "replay every delivery the other flags match")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be done, and change nothing")
	return cmd
}

func quarantineFlags(cmd *cobra.Command, f *dlqFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the configuration file (YAML): its kafka, schema_registry, dedup and sources sections")
	fl.StringArrayVar(&f.ids, "id", nil, "only the deliveries that normalize to this event id (repeat the flag, or list more ids after it)")
	fl.StringVar(&f.since, "since", "", "only the deliveries received within this long before now (90m, 24h, 7d)")
}

func quarantineSetup(cmd *cobra.Command, f dlqFlags, args []string) (*redrive.Quarantine, redrive.Filter, error) {
	filter, err := operatorFilter(cmd.Name(), f, args)
	if err != nil {
		return nil, filter, err
	}
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, filter, err
	}
	q, err := redrive.NewQuarantine(cfg, newLogger(cfg.Log, cmd.ErrOrStderr()).With("command", "quarantine "+cmd.Name()))
	return q, filter, err
}

func quarantineList(cmd *cobra.Command, f dlqFlags, args []string) error {
	q, filter, err := quarantineSetup(cmd, f, args)
	if err != nil {
		return err
	}
	ds, err := q.List(cmd.Context(), filter)
	return printList(cmd, "quarantine list", f.json, ds, err, quarantineTable)
}

func quarantineReplay(cmd *cobra.Command, f dlqFlags, args []string) error {
	if f.all == (len(f.ids) > 0) {
		return fmt.Errorf("replay needs either --id EVENT_ID ... or --all: %w", errUsage)
	}
	q, filter, err := quarantineSetup(cmd, f, args)
	if err != nil {
		return err
	}
	res, steps, err := q.Replay(cmd.Context(), filter, f.dryRun)
	return printRun(cmd, "quarantine replay", f.dryRun, res, steps, err)
}

func quarantineTable(w io.Writer, ds []redrive.Delivery, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tOFFSET\tSOURCE\tRECEIVED\tREPLAYED\tNOW\tQUARANTINED BECAUSE")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s ago\t%s\t%s\t%s\n", d.Partition, d.Offset, d.Source,
			now.Sub(d.ReceivedAt).Round(time.Second), yesNo(d.Replayed), oneLine(nowSays(d), 60), oneLine(d.Reason, 60))
	}
	if len(ds) == 0 {
		fmt.Fprintln(tw, "(no deliveries)")
	}
	return tw.Flush()
}

// nowSays is what today's presets make of a delivery, in a few words.
func nowSays(d redrive.Delivery) string {
	if !d.Normalizes {
		return "still fails: " + d.Problem
	}
	if len(d.Events) == 0 {
		return "no event"
	}
	ids := make([]string, len(d.Events))
	for i, e := range d.Events {
		ids[i] = e.EventType + " " + e.EventID
	}
	return strings.Join(ids, ", ")
}
