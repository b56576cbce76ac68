// Command bridge receives signed social-media webhooks and produces them to Kafka as Avro.
//
//	bridge serve --config FILE   run with a configuration file
//	bridge dev [--listen ADDR]   run on an in-process Kafka and schema registry
//	bridge version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: bridge serve --config FILE | bridge dev [--listen ADDR] | bridge version")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "dev":
		return dev(ctx, args[1:], stdout, stderr)
	case "version":
		_, err := fmt.Fprintln(stdout, version())
		return err
	case "-h", "--help", "help":
		_, err := fmt.Fprintln(stdout, errUsage.Error())
		return err
	}
	return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
}
