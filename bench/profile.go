package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"time"
)

// With -profile, -concurrency takes CPU profiles of its closed-loop phases into that folder:
// the bridge process's (through its --pprof endpoint) and this process's (the load generator
// driving the bridge, or the direct producer), so that where each one's CPU goes can be read
// with go tool pprof. A profile costs its process a few per cent.

// pprofPort picks a free loopback port for a bridge's --pprof.
func pprofPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// profiling is one phase's profiles being taken; stop writes them.
type profiling struct {
	self   *os.File
	bridge chan error
}

// startProfiles starts the profiles of a phase of d named name: this process's, and the
// bridge's at pprofAddr unless it is "". Without -profile it does nothing.
func (r *runner) startProfiles(ctx context.Context, name, pprofAddr string, d time.Duration) *profiling {
	if r.o.profileDir == "" {
		return nil
	}
	p := &profiling{}
	if f, err := os.Create(filepath.Join(r.o.profileDir, name+"-self.pprof")); err == nil {
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
		} else {
			p.self = f
		}
	}
	if pprofAddr != "" {
		p.bridge = make(chan error, 1)
		go func() {
			p.bridge <- fetchProfile(ctx, pprofAddr, d, filepath.Join(r.o.profileDir, name+"-bridge.pprof"))
		}()
	}
	return p
}

// stop ends this process's profile and waits for the bridge's.
func (p *profiling) stop(r *runner) {
	if p == nil {
		return
	}
	if p.self != nil {
		pprof.StopCPUProfile()
		p.self.Close()
	}
	if p.bridge != nil {
		if err := <-p.bridge; err != nil {
			r.logf("bridge profile: %v", err)
		}
	}
}

// fetchProfile saves the CPU profile of d that the bridge's pprof endpoint at addr serves.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", addr, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
