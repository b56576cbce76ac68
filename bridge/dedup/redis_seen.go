package dedup

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/socialbridge/bridge/bridge/failure"
)

// Seen reports whether (source, id) was accepted within its window, without reserving it:
// for a caller that must only look (a dry run of `bridge quarantine replay`). An id in
// flight is not seen.
func (r *Redis) Seen(ctx context.Context, source, id string) (bool, error) {
	v, err := r.rdb.Get(ctx, r.prefix+source+":"+id).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, failure.Wrap(failure.Unavailable, "the dedup store (redis) cannot be reached", err)
	}
	return v == seenValue, nil
}
