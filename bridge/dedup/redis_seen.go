package dedup

import (
	"context"

	"github.com/redis/rueidis"

	"github.com/socialbridge/bridge/bridge/failure"
)

// Seen reports whether (source, id) was accepted within its window, without reserving it:
// for a caller that must only look (a dry run of `bridge quarantine replay`). An id in
// flight is not seen.
func (r *Redis) Seen(ctx context.Context, source, id string) (bool, error) {
	v, err := r.rdb.Do(ctx, r.rdb.B().Get().Key(r.prefix+source+":"+id).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, failure.Wrap(failure.Unavailable, "the dedup store (redis) cannot be reached", err)
	}
	return v == seenValue, nil
}
