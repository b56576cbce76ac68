package dedup_test

import (
	"context"
	"fmt"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
)

func ExampleStore_Reserve() {
	s := dedup.New(24*time.Hour, 1_000_000, dedup.Options{})
	ctx := context.Background()
	now := time.Now()

	dup, done, err := s.Reserve(ctx, "acme", "evt_1", now)
	fmt.Println(dup, err)
	done(true) // Kafka acknowledged the record

	dup, _, err = s.Reserve(ctx, "acme", "evt_1", now.Add(time.Minute))
	fmt.Println(dup, err)
	// Output:
	// false <nil>
	// true <nil>
}
