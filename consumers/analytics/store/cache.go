package store

import (
	"maps"
	"sync"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// sketchCache keeps the sketches this process's last committed batch wrote, so that the
// next batch merges into them instead of reading them back. They are valid while nobody
// else has committed since, which the offsets tell: every batch that writes aggregates moves
// an offset forward and offsets never move back, so when the offsets a batch reads (under
// the write lock) are the ones the cached batch left, the rows are the ones it wrote.
type sketchCache struct {
	mu       sync.Mutex
	offsets  map[TP]int64 // the whole offsets table after the cached batch; nil: empty cache
	hourly   map[hourKey]*sketch.Counts
	platform map[platformKey]*sketch.Counts
}

// take returns the cached sketches if the database's offsets are still the cached batch's,
// for the caller to merge into, and empties the cache either way: until the caller's batch
// commits (keep), no batch may rely on it.
func (c *sketchCache) take(stored map[TP]int64) (map[hourKey]*sketch.Counts, map[platformKey]*sketch.Counts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hourly, platform := c.hourly, c.platform
	valid := c.offsets != nil && maps.Equal(c.offsets, stored)
	c.offsets, c.hourly, c.platform = nil, nil, nil
	if !valid {
		return nil, nil
	}
	return hourly, platform
}

// keep caches what a batch committed: the offsets table after it, and its merged sketches.
// The next batch that finds them valid takes them and merges its own delays into them.
func (c *sketchCache) keep(stored, next map[TP]int64, a *aggregates) {
	offsets := maps.Clone(stored)
	maps.Copy(offsets, next)
	hourly := make(map[hourKey]*sketch.Counts, len(a.hourly))
	for k, cell := range a.hourly {
		if cell.delays != nil {
			hourly[k] = cell.delays
		}
	}
	platform := make(map[platformKey]*sketch.Counts, len(a.platform))
	for k, cell := range a.platform {
		if cell.delays != nil {
			platform[k] = cell.delays
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offsets, c.hourly, c.platform = offsets, hourly, platform
}
