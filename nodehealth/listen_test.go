package nodehealth

import (
	"context"
	"strings"
	"testing"
)

// A host-less health.metrics_listen (":PORT") binds loopback only.
func TestMetricsServeDefaultsToLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, errc, err := NewMetrics("n1").Serve(ctx, ":0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr.String(), "127.0.0.1:") {
		t.Errorf("metrics bound %s, want 127.0.0.1:PORT", addr)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
