package dedup_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/internal/redisserver"
)

// BenchmarkRedisReserve reserves new ids and marks them accepted as concurrent requests do,
// on a redis-server of its own: conc=N from N goroutines at once, each as soon as its last
// is done (ns/op: the time per reservation while they share the server); rate=R at R a
// second, whatever the answers (p50-µs, p99-µs: from each reservation's due time to its
// answer). client-µs/op and redis-µs/op are the CPU time this process and the server spent
// per reservation, marks and renewals included: what a replica costs a machine whose cores
// are busy anyway.
func BenchmarkRedisReserve(b *testing.B) {
	srv := redisserver.Require(b)
	store := func(b *testing.B) dedup.Reserver {
		s := dedup.NewRedis(dedup.RedisOptions{Addr: srv.Addr(),
			KeyPrefix: fmt.Sprintf("bench:%d:", time.Now().UnixNano()), Window: time.Minute, Lease: 10 * time.Second})
		b.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	}
	for _, conc := range []int{1, 32, 256} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			s := store(b)
			meter := startMeter(srv.Pid())
			closedLoop(b, s, conc)
			meter.report(b)
		})
	}
	for _, rate := range []int{2000, 10000} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) {
			s := store(b)
			closedLoop(b, s, 8) // connections dialed
			b.ResetTimer()
			meter := startMeter(srv.Pid())
			lat := openLoop(b, s, rate)
			meter.report(b)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

var benchIDs atomic.Int64

func reserveOne(b *testing.B, s dedup.Reserver) {
	_, done, err := s.Reserve(context.Background(), "acme", strconv.FormatInt(benchIDs.Add(1), 10), time.Now())
	if err != nil {
		b.Error(err)
		return
	}
	done(true)
}

// closedLoop reserves b.N ids from conc goroutines.
func closedLoop(b *testing.B, s dedup.Reserver, conc int) {
	var n atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for n.Add(1) <= int64(b.N) {
				reserveOne(b, s)
			}
		})
	}
	wg.Wait()
}

// openLoop reserves b.N ids at rate a second and returns each one's latency.
func openLoop(b *testing.B, s dedup.Reserver, rate int) []time.Duration {
	lat := make([]time.Duration, b.N)
	due := make(chan int, b.N)
	var wg sync.WaitGroup
	start := time.Now()
	for range 256 {
		wg.Go(func() {
			for i := range due {
				at := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
				time.Sleep(time.Until(at))
				reserveOne(b, s)
				lat[i] = time.Since(at)
			}
		})
	}
	for i := range b.N {
		due <- i
	}
	close(due)
	wg.Wait()
	return lat
}

// cpuMeter measures this process's and the server's CPU time from its start.
type cpuMeter struct {
	serverPid      int
	client, server time.Duration
}

func startMeter(serverPid int) *cpuMeter {
	return &cpuMeter{serverPid: serverPid, client: processCPU(os.Getpid()), server: processCPU(serverPid)}
}

func (m *cpuMeter) report(b *testing.B) {
	if c := processCPU(os.Getpid()); c > 0 {
		b.ReportMetric(float64((c-m.client).Microseconds())/float64(b.N), "client-µs/op")
	}
	if c := processCPU(m.serverPid); c > 0 {
		b.ReportMetric(float64((c-m.server).Microseconds())/float64(b.N), "redis-µs/op")
	}
}

// processCPU is the user and system CPU time of process pid (Linux: /proc/PID/stat), 0
// when it cannot be read.
func processCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / 100 // USER_HZ
}
