package kafkatest

// Kill stops the broker with SIGKILL, as a crash does, and waits until it has exited.
// Start starts it again with the same data and ports.
func (b *Broker) Kill() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked(0)
}
