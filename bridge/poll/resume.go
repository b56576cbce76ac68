package poll

import (
	"context"

	"github.com/socialbridge/bridge/bridge/providers"
)

// A poll goes in rounds, each bounded: the listing is newest first and results must be
// emitted oldest first, so a round reads down from where the backlog ends (not from the
// head) to the cursor's place, holding only the deepest pages read (at most the round's
// bytes, plus the page being read), and emits the deepest maxRoundItems results above the
// cursor. The cursor's Depth then says how many results wait above them; the next round
// starts that far down less maxRoundItems, and rounds follow one another at once until
// Depth is 0. A round that reads maxSearchPages without meeting the cursor's place (a long
// outage) emits nothing: it saves how far it read, and the next round reads on from there.
// Offsets move as results arrive at the head, so Depth is a lower bound of the cursor's
// offset, never past it: arrivals only push the cursor's place further down. A result
// pushed into the next page by arrivals is read twice; the round keeps it once.

// Bounds of one round.
const (
	maxRoundItems  = 1000     // results a round emits at most
	maxSearchPages = 100      // pages a round reads looking for the cursor's place
	maxPageBytes   = 16 << 20 // a page larger than this is refused
	// DefaultMaxPollBytes is how many bytes of pages a round holds at once when
	// Options.MaxPollBytes is 0; the page being read (at most 16 MiB) comes on top.
	DefaultMaxPollBytes = 32 << 20
)

// page is one page of the listing as a round holds it.
type page struct {
	offset int              // where it was asked for
	items  []providers.Item // its new results, newest first
	size   int              // bytes of its body, which its items share
}

// span is what a round read: the results right above the cursor's place, newest first.
type span struct {
	items   []providers.Item
	start   int  // the listing offset of items[0], at least
	found   bool // the cursor's place, or the listing's end, was reached
	reached int  // without found: the offset the search read down to
}

// read reads one round's span for cur.
func (p *Poller) read(ctx context.Context, src *Source, cur Cursor) (span, error) {
	offset := max(0, cur.Depth-maxRoundItems)
	r := reading{limit: p.maxPollBytes(), seen: map[string]bool{}}
	for range maxSearchPages {
		items, more, size, err := p.page(ctx, src, offset)
		if err != nil {
			return span{}, err
		}
		if r.add(cur, page{offset: offset, size: size}, items) || !more || len(items) == 0 {
			return r.span(), nil
		}
		offset += len(items)
	}
	return span{reached: offset}, nil
}

// reading is a round's pages so far: the deepest, within limit bytes.
type reading struct {
	pages []page
	bytes int
	limit int
	seen  map[string]bool // ids read this round
}

// add takes pg with its items, up to the first the cursor has handled, and reports whether
// it met one. It then drops the shallowest pages held past the byte limit.
func (r *reading) add(cur Cursor, pg page, items []providers.Item) (met bool) {
	for _, it := range items {
		if cur.seen(it.ID) {
			met = true
			break
		}
		if !r.seen[it.ID] {
			r.seen[it.ID] = true
			pg.items = append(pg.items, it)
		}
	}
	r.pages, r.bytes = append(r.pages, pg), r.bytes+pg.size
	for r.bytes > r.limit && len(r.pages) > 1 {
		r.bytes -= r.pages[0].size
		r.pages = r.pages[1:]
	}
	return met
}

// span returns the deepest maxRoundItems results held.
func (r *reading) span() span {
	sp := span{found: true, start: r.pages[0].offset}
	for _, pg := range r.pages {
		sp.items = append(sp.items, pg.items...)
	}
	if extra := len(sp.items) - maxRoundItems; extra > 0 {
		sp.items, sp.start = sp.items[extra:], sp.start+extra
	}
	return sp
}

func (p *Poller) maxPollBytes() int {
	if p.o.MaxPollBytes > 0 {
		return p.o.MaxPollBytes
	}
	return DefaultMaxPollBytes
}
