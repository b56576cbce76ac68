package main

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Phase is the measured outcome of one load phase.
type Phase struct {
	Name           string             `json:"name"`
	What           string             `json:"what"`
	Loop           string             `json:"loop"`                  // "closed" or "open"
	TargetRate     float64            `json:"target_rate,omitempty"` // open loop: requests per second
	Conns          int                `json:"conns"`
	Seconds        float64            `json:"seconds"`
	Sent           int                `json:"sent"`
	Late           int                `json:"late,omitempty"` // open loop: dropped, still unsent after the grace
	Accepted       int                `json:"accepted"`       // 200 accepted (direct: records acknowledged)
	AcceptedPerSec float64            `json:"accepted_per_sec"`
	OKPerSec       float64            `json:"ok_per_sec"` // 200 answers (accepted + duplicate) per second
	Latency        Latency            `json:"latency_ms"`
	Answers        map[string]int     `json:"answers"`
	CPUSeconds     map[string]float64 `json:"cpu_seconds"` // by process: bridge, loadgen (this program), broker
	// CPUPer1000 is the CPU seconds of the measured process (the bridge; for the direct
	// baseline, this program, which does nothing else then) per 1,000 requests sent.
	CPUPer1000 float64 `json:"cpu_seconds_per_1000"`
	PeakRSSMiB float64 `json:"bridge_peak_rss_mib,omitempty"` // bridge process, VmHWM at the phase's end
	// Reserve and Ack are the bridges' own histograms of the phase (-scale): the dedup
	// reservation of new ids, and the wait for Kafka's acknowledgement; p50 and p99 only,
	// interpolated within buckets that double from 50 µs and 0.5 ms.
	Reserve *Latency `json:"reserve_ms,omitempty"`
	Ack     *Latency `json:"kafka_ack_ms,omitempty"`
}

// Latency holds percentiles in milliseconds, over every answered request of a phase.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// summarize turns a run into a Phase; cpu is the CPU seconds used by each process.
func summarize(name, what string, run *loadRun, cpu map[string]float64, measured string) Phase {
	p := Phase{
		Name: name, What: what, Loop: "closed", Conns: run.conns,
		Seconds: run.elapsed.Seconds(), Late: run.late,
		Answers: map[string]int{}, CPUSeconds: cpu,
	}
	if run.rate > 0 {
		p.Loop, p.TargetRate = "open", run.rate
	}
	lat := make([]time.Duration, 0, len(run.results))
	ok := 0
	for _, r := range run.results {
		if r.outcome == notSent {
			continue
		}
		p.Sent++
		p.Answers[answerKey(r)]++
		switch r.outcome {
		case accepted:
			p.Accepted++
			ok++
		case duplicate:
			ok++
		}
		if r.outcome != sendError {
			lat = append(lat, r.latency)
		}
	}
	p.AcceptedPerSec = float64(p.Accepted) / p.Seconds
	p.OKPerSec = float64(ok) / p.Seconds
	p.Latency = percentiles(lat)
	if c, ok := cpu[measured]; ok && p.Sent > 0 {
		p.CPUPer1000 = c / float64(p.Sent) * 1000
	}
	return p
}

func answerKey(r result) string {
	switch r.outcome {
	case accepted:
		if r.code == 0 {
			return "acked"
		}
		return "200 accepted"
	case duplicate:
		return "200 duplicate"
	case sendError:
		return "error"
	}
	return strconv.Itoa(int(r.code))
}

// percentiles computes exact percentiles from every sample (nearest rank).
func percentiles(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return ms(lat[max(0, min(i, len(lat)-1))])
	}
	return Latency{P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: ms(lat[len(lat)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
