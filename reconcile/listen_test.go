package reconcile

import (
	"context"
	"strings"
	"testing"
)

// A host-less daemon.metrics_listen (":PORT") binds loopback only.
func TestMetricsListenDefaultsToLoopback(t *testing.T) {
	w := newWorld(t, "c[1-2]", "c1", "c2")
	var addr string
	if err := Run(context.Background(), w.r, RunOptions{StateDir: w.cfg.StateDir, Once: true, MetricsListen: ":0",
		Ready: func(a string) { addr = a }}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("metrics bound %q, want 127.0.0.1:PORT", addr)
	}
}
