package main

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
)

func TestHexAddr(t *testing.T) {
	for in, want := range map[string]string{"0100007F:1F90": "127.0.0.1:8080", "00000000:0050": "0.0.0.0:80"} {
		if got, err := hexAddr(in); err != nil || got != want {
			t.Errorf("hexAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestListeningAddr finds the one address a child process listens on.
func TestListeningAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := ln.Addr().String()
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f} // the child holds the listening socket
	p := testkit.Start(t, "sleep", cmd)
	var got string
	testkit.Eventually(t, time.Minute, "the child's listening address", func() bool {
		got, err = listeningAddr(p.Pid())
		return err == nil
	})
	if got != want {
		t.Fatalf("listeningAddr = %q, want %q", got, want)
	}
}
