package slurm

import (
	"os"
	"testing"
)

// integrationMain, set by integration_test.go, starts the shared test
// cluster around the tests (unless -short).
var integrationMain func(m *testing.M) int

func TestMain(m *testing.M) {
	if os.Getenv("SE_FAKE_SCONTROL") != "" {
		os.Exit(fakeScontrol())
	}
	if integrationMain != nil {
		os.Exit(integrationMain(m))
	}
	os.Exit(m.Run())
}
