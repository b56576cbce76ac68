// Command spoolstore measures the candidates for the spool's storage (docs/spool.md): appends
// per second made durable with fsync, group-committed across concurrent appenders, and the
// drain rate (read every record in order, delete what is drained, durably), on the same disk,
// in one run:
//
//   - segments: bridge/spool itself, segment files of CRC'd frames;
//   - wal: github.com/tidwall/wal, a maintained write-ahead log library;
//   - bbolt: go.etcd.io/bbolt, a B+tree in one file, one transaction per group;
//   - sqlite: modernc.org/sqlite in WAL mode, synchronous=FULL, one transaction per group.
//
// It is a module of its own so that the candidates not chosen stay out of the bridge's
// go.mod. Run it with `make spool-storage-bench` (writes bench/RESULTS.md's section
// "spool-storage"); -dir picks the disk (default: the system's temporary directory).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/socialbridge/bridge/internal/resultsmd"
)

// store is one candidate: append makes data durable before it returns (called by many
// goroutines at once), drain reads every record in append order and deletes them.
type store interface {
	append(data []byte) error
	drain() (int, error)
	close() error
}

type candidate struct {
	name string
	open func(dir string) (store, error)
}

var candidates = []candidate{
	{"segments (bridge/spool)", openSegments},
	{"wal (tidwall/wal)", openWAL},
	{"bbolt", openBolt},
	{"sqlite (modernc, WAL)", openSQLite},
}

func main() {
	dir := flag.String("dir", os.TempDir(), "where the candidates write (the disk measured)")
	size := flag.Int("size", 1024, "bytes of a record (a typical spooled record is about 1 KiB)")
	perWriter := flag.Int("appends", 400, "appends per writer at each concurrency")
	drainN := flag.Int("drain", 100_000, "records appended, then drained")
	rounds := flag.Int("rounds", 3, "rounds; each cell is the median of its rounds (the candidates take turns, so that the machine's load falls on all)")
	results := flag.String("results", "", "bench/RESULTS.md to write the figures to (empty: print only)")
	flag.Parse()
	data := make([]byte, *size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	cells := make([][][]float64, len(candidates)) // candidate → column → rounds
	for r := range *rounds {
		for k := range candidates {
			i := (k + r) % len(candidates)
			row, err := measure(candidates[i], *dir, data, *perWriter, *drainN)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", candidates[i].name, err)
				os.Exit(1)
			}
			fmt.Printf("round %d: %s %.0f\n", r+1, candidates[i].name, row)
			if cells[i] == nil {
				cells[i] = make([][]float64, len(row))
			}
			for j, v := range row {
				cells[i][j] = append(cells[i][j], v)
			}
		}
	}
	var rows []string
	for i, c := range candidates {
		row := []string{c.name}
		for _, vs := range cells[i] {
			row = append(row, fmt.Sprintf("%.0f", median(vs)))
		}
		rows = append(rows, "| "+strings.Join(row, " | ")+" |")
		fmt.Println(rows[len(rows)-1])
	}
	if *results != "" {
		if err := write(*results, *dir, *size, *rounds, rows); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

var concurrency = []int{1, 16, 64}

// measure returns c's figures: appends/s at each concurrency, then the drain rate.
func measure(c candidate, dir string, data []byte, perWriter, drainN int) ([]float64, error) {
	var row []float64
	for _, n := range concurrency {
		rate, err := appendRate(c, dir, data, n, perWriter)
		if err != nil {
			return nil, err
		}
		row = append(row, rate)
	}
	rate, err := drainRate(c, dir, data, drainN)
	if err != nil {
		return nil, err
	}
	return append(row, rate), nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

func appendRate(c candidate, dir string, data []byte, writers, perWriter int) (float64, error) {
	sub, err := os.MkdirTemp(dir, "spoolstore-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(sub)
	st, err := c.open(sub)
	if err != nil {
		return 0, err
	}
	defer st.close()
	errs := make(chan error, writers)
	start := time.Now()
	for range writers {
		go func() {
			for range perWriter {
				if err := st.append(data); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return float64(writers*perWriter) / time.Since(start).Seconds(), nil
}

// drainRate appends n records (64 writers at once), then times draining them all.
func drainRate(c candidate, dir string, data []byte, n int) (float64, error) {
	sub, err := os.MkdirTemp(dir, "spoolstore-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(sub)
	st, err := c.open(sub)
	if err != nil {
		return 0, err
	}
	defer st.close()
	errs := make(chan error, 64)
	for w := range 64 {
		go func() {
			for i := w; i < n; i += 64 {
				if err := st.append(data); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	start := time.Now()
	got, err := st.drain()
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("drained %d of %d", got, n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func write(path, dir string, size, rounds int, rows []string) error {
	fs := "unknown"
	if out, err := os.ReadFile("/proc/mounts"); err == nil {
		fs = fsOf(string(out), dir)
	}
	body := fmt.Sprintf(`## Spool storage candidates

The candidates for the spool's storage (docs/spool.md), on the same disk in one run (%s, %s,
%d CPUs, %s): appends per second, each durable (fsync) before it returns, group-committed
across the appenders waiting at once (the library's batch, or one transaction per group); and
the drain rate, records per second read back in order and deleted durably in batches of 1,024
(after %s records were appended). Records of %d bytes; each figure is the median of %d rounds
in which the candidates took turns. `+"`make spool-storage-bench`"+`.

| store | 1 appender | 16 appenders | 64 appenders | drain (records/s) |
|---|--:|--:|--:|--:|
%s
`, filepath.Clean(dir), fs, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"), "100,000", size, rounds, strings.Join(rows, "\n"))
	return resultsmd.WriteSection(path, "spool-storage", body, false)
}

// fsOf returns the file system type of the mount holding dir.
func fsOf(mounts, dir string) string {
	best, typ := "", "unknown"
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && strings.HasPrefix(dir, f[1]) && len(f[1]) > len(best) {
			best, typ = f[1], f[2]
		}
	}
	return typ
}
