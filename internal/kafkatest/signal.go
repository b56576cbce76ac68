package kafkatest

import "syscall"

// Kill stops the broker with SIGKILL, as a crash does, and waits until it has exited.
// Start starts it again with the same data and ports.
func (b *Broker) Kill() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked(0)
}

// Pause freezes the running broker with SIGSTOP: its connections stay open but nothing is
// answered, as with a long garbage-collection pause or a hung disk. Resume undoes it.
func (b *Broker) Pause() { b.signal(syscall.SIGSTOP) }

// Resume continues a broker frozen by Pause.
func (b *Broker) Resume() { b.signal(syscall.SIGCONT) }

func (b *Broker) signal(sig syscall.Signal) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		b.t.Fatalf("kafkatest: %v: broker not running", sig)
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("kafkatest: %v: %v", sig, err)
	}
}
