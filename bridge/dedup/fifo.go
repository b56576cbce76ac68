package dedup

// stamp is one FIFO entry: an id's key and when it was accepted, unix nanoseconds.
type stamp struct {
	k  key
	at int64
}

// fifo is a growable ring buffer of stamps; its capacity is always a power of two.
type fifo struct {
	buf  []stamp
	head int
	n    int
}

func (q *fifo) len() int { return q.n }

func (q *fifo) front() stamp { return q.buf[q.head] }

func (q *fifo) push(e stamp) {
	if q.n == len(q.buf) {
		q.resize(max(64, 2*len(q.buf)))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = e
	q.n++
}

func (q *fifo) pop() stamp {
	e := q.buf[q.head]
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return e
}

// filter keeps, in order, only the entries for which keep is true.
func (q *fifo) filter(keep func(stamp) bool) {
	n := 0
	for i := range q.n {
		if e := q.buf[(q.head+i)&(len(q.buf)-1)]; keep(e) {
			q.buf[(q.head+n)&(len(q.buf)-1)] = e
			n++
		}
	}
	q.n = n
}

// copyOut returns the entries in order, in a slice of their own.
func (q *fifo) copyOut() []stamp {
	out := make([]stamp, q.n)
	first := copy(out, q.buf[q.head:min(q.head+q.n, len(q.buf))])
	copy(out[first:], q.buf[:q.n-first])
	return out
}

func (q *fifo) resize(size int) {
	buf := make([]stamp, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}
