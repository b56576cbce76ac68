package dedup_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/internal/redisserver"
)

// BenchmarkRedisReserve reserves new ids and marks them accepted from conc goroutines at
// once, as concurrent requests do, on a redis-server of its own: ns/op is the time per
// reservation while they share the server; client-µs/op and redis-µs/op are the CPU time
// this process and the server spent per reservation (marks and renewals included), which
// is what a replica costs on a machine whose cores are busy anyway.
func BenchmarkRedisReserve(b *testing.B) {
	srv := redisserver.Require(b)
	for _, conc := range []int{1, 32, 256} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			s := dedup.NewRedis(&redis.Options{Addr: srv.Addr()}, dedup.RedisOptions{
				KeyPrefix: fmt.Sprintf("bench:%d:", time.Now().UnixNano()), Window: time.Minute, Lease: 10 * time.Second})
			defer s.Close(context.Background())
			benchReserve(b, s, srv.Pid(), conc)
		})
	}
}

func benchReserve(b *testing.B, s dedup.Reserver, serverPid, conc int) {
	var n atomic.Int64
	run := func(count int64) {
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for i := n.Add(1); i <= count; i = n.Add(1) {
					_, done, err := s.Reserve(context.Background(), "acme", strconv.FormatInt(i, 10), time.Now())
					if err != nil {
						b.Error(err)
						return
					}
					done(true)
				}
			})
		}
		wg.Wait()
	}
	run(int64(conc)) // connections dialed
	n.Store(0)
	client, server := processCPU(os.Getpid()), processCPU(serverPid)
	b.ResetTimer()
	n.Store(int64(conc))
	run(int64(b.N + conc))
	b.StopTimer()
	if c := processCPU(os.Getpid()); c > 0 {
		b.ReportMetric(float64((c-client).Microseconds())/float64(b.N), "client-µs/op")
	}
	if c := processCPU(serverPid); c > 0 {
		b.ReportMetric(float64((c-server).Microseconds())/float64(b.N), "redis-µs/op")
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
