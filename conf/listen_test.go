package conf_test

import (
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

// A host-less metrics address binds loopback; an explicit host is kept.
func TestMetricsAddr(t *testing.T) {
	for in, want := range map[string]string{
		":9464":          "127.0.0.1:9464",
		":0":             "127.0.0.1:0",
		"0.0.0.0:9464":   "0.0.0.0:9464",
		"[::]:9464":      "[::]:9464",
		"10.0.0.5:9817":  "10.0.0.5:9817",
		"localhost:9817": "localhost:9817",
	} {
		if got := conf.MetricsAddr(in); got != want {
			t.Errorf("MetricsAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
