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

// TestListeningAddrIgnores: a process on two addresses (a bridge with --pprof) has none
// until the one to ignore is named, and then the other.
func TestListeningAddrIgnores(t *testing.T) {
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = files // the child holds both listening sockets
	p := testkit.Start(t, "sleep", cmd)
	var got string
	var err error
	testkit.Eventually(t, time.Minute, "the child's listening address, the profiler's ignored", func() bool {
		got, err = listeningAddr(p.Pid(), addrs[1])
		return err == nil
	})
	if got != addrs[0] {
		t.Fatalf("listeningAddr ignoring %s = %q, want %q", addrs[1], got, addrs[0])
	}
	if got, err := listeningAddr(p.Pid()); err == nil {
		t.Fatalf("listeningAddr of a process on two addresses = %q, want an error", got)
	}
}
