package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeScontrolClient returns a Scontrol running the test binary as a fake
// scontrol that replays testdata/scontrol-22.05/<reply>, and the path where
// the fake records what it saw.
func fakeScontrolClient(t *testing.T, reply string, timeout time.Duration, env ...string) (*Scontrol, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := filepath.Abs(filepath.Join("testdata", "scontrol-22.05", reply))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(prefix + ".rc"); err != nil {
		t.Fatalf("captured reply %s missing: %v", reply, err)
	}
	rec := filepath.Join(t.TempDir(), "record.json")
	env = append([]string{"SE_FAKE_SCONTROL=" + prefix, "SE_FAKE_RECORD=" + rec}, env...)
	s, err := NewScontrol(ScontrolOptions{Path: exe, Env: env, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s, rec
}

func readRecord(t *testing.T, path string) fakeRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fake scontrol did not run: %v", err)
	}
	var r fakeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func assertNotRun(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		t.Errorf("scontrol was run: %+v", readRecord(t, path))
	}
}

func TestScontrolNodesNamed(t *testing.T) {
	s, rec := fakeScontrolClient(t, "show-named", 0, "SE_EXTRA=yes", "SLURM_CONF=/etc/x/slurm.conf")
	nodes, err := s.Nodes(context.Background(), "down1", "cloud1", "down1")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "down1" || nodes[1].Name != "cloud1" {
		t.Errorf("nodes = %+v, want down1, cloud1 in that order", nodes)
	}
	r := readRecord(t, rec)
	want := []string{"--all", "--future", "--oneliner", "show", "node", "down1,cloud1"}
	if !reflect.DeepEqual(r.Args, want) {
		t.Errorf("argv = %q, want %q", r.Args, want)
	}
	if r.Env["SE_EXTRA"] != "yes" || r.Env["SLURM_CONF"] != "/etc/x/slurm.conf" || r.Env["SLURM_TIME_FORMAT"] != "standard" {
		t.Errorf("environment = %v", r.Env)
	}
	if r.Env["PATH"] == "" {
		t.Error("scontrol got no PATH")
	}
}

func TestScontrolNodesAll(t *testing.T) {
	s, rec := fakeScontrolClient(t, "show-all", 0)
	nodes, err := s.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 6 {
		t.Errorf("%d nodes, want 6", len(nodes))
	}
	if got := readRecord(t, rec).Args; !reflect.DeepEqual(got, []string{"--all", "--future", "--oneliner", "show", "node"}) {
		t.Errorf("argv = %q", got)
	}
}

func TestScontrolNodesNotFound(t *testing.T) {
	t.Run("reported by scontrol", func(t *testing.T) {
		s, _ := fakeScontrolClient(t, "show-unknown", 0)
		nodes, err := s.Nodes(context.Background(), "cloud1", "nosuch1", "nosuch2")
		if !errors.Is(err, ErrNodeNotFound) {
			t.Fatalf("err = %v, want ErrNodeNotFound", err)
		}
		if !strings.Contains(err.Error(), "nosuch1,nosuch2") {
			t.Errorf("error does not name the missing nodes: %v", err)
		}
		if len(nodes) != 1 || nodes[0].Name != "cloud1" {
			t.Errorf("found nodes = %+v, want cloud1", nodes)
		}
	})
	t.Run("absent from listing", func(t *testing.T) {
		s, _ := fakeScontrolClient(t, "show-named", 0)
		_, err := s.Nodes(context.Background(), "cloud1", "cloud9")
		if !errors.Is(err, ErrNodeNotFound) || !strings.Contains(err.Error(), "cloud9") {
			t.Fatalf("err = %v, want ErrNodeNotFound naming cloud9", err)
		}
	})
}

func TestScontrolNoController(t *testing.T) {
	s, _ := fakeScontrolClient(t, "show-nocontroller", 0)
	_, err := s.Nodes(context.Background(), "cloud1")
	if err == nil || errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("err = %v, want a controller error", err)
	}
	if !strings.Contains(err.Error(), "Unable to contact slurm controller") {
		t.Errorf("error lacks scontrol's stderr: %v", err)
	}
}

func TestScontrolUpdateArgv(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		u     NodeUpdate
		want  []string
	}{
		{"down with reason", []string{"down1"},
			NodeUpdate{State: SetDown, Reason: "slurm-elastic: (Code:Config) image x:1 not found"},
			[]string{"update", "NodeName=down1", "State=DOWN", "Reason=slurm-elastic: (Code:Config) image x:1 not found"}},
		{"addresses", []string{"cloud1", "cloud2"},
			NodeUpdate{Addr: "10.0.0.1", Hostname: "ct1"},
			[]string{"update", "NodeName=cloud1,cloud2", "NodeAddr=10.0.0.1,10.0.0.1", "NodeHostName=ct1,ct1"}},
		{"power down force", []string{"cloud4"},
			NodeUpdate{State: SetPowerDownForce},
			[]string{"update", "NodeName=cloud4", "State=POWER_DOWN_FORCE"}},
		{"resume", []string{"down1", "cloud3", "down1"},
			NodeUpdate{State: SetResume},
			[]string{"update", "NodeName=down1,cloud3", "State=RESUME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := fakeScontrolClient(t, "update-down", 0)
			if err := s.Update(context.Background(), tt.nodes, tt.u); err != nil {
				t.Fatal(err)
			}
			if got := readRecord(t, rec).Args; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("argv = %q\nwant   %q", got, tt.want)
			}
		})
	}
}

func TestScontrolUpdateNotFound(t *testing.T) {
	s, _ := fakeScontrolClient(t, "update-unknown", 0)
	err := s.Update(context.Background(), []string{"nosuch1"}, NodeUpdate{State: SetDown, Reason: "x"})
	if !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("err = %v, want ErrNodeNotFound", err)
	}
	if !strings.Contains(err.Error(), "nosuch1") {
		t.Errorf("error does not name the node: %v", err)
	}
}

func TestScontrolUpdateOtherError(t *testing.T) {
	s, _ := fakeScontrolClient(t, "update-bad-state", 0)
	err := s.Update(context.Background(), []string{"cloud1"}, NodeUpdate{State: SetIdle})
	if err == nil || errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("err = %v, want a plain error", err)
	}
	if !strings.Contains(err.Error(), "Invalid input") || !strings.Contains(err.Error(), "scontrol update") {
		t.Errorf("error lacks command or stderr: %v", err)
	}
}

// Bad requests are refused before scontrol runs.
func TestScontrolRejects(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []string
		u       NodeUpdate
		mention string
	}{
		{"no names", nil, NodeUpdate{State: SetResume}, "no node names"},
		{"down without reason", []string{"cloud1"}, NodeUpdate{State: SetDown}, "reason"},
		{"drain with blank reason", []string{"cloud1"}, NodeUpdate{State: SetDrain, Reason: "  "}, "reason"},
		{"shell characters", []string{"cloud1;reboot"}, NodeUpdate{State: SetResume}, `"cloud1;reboot"`},
		{"hostlist", []string{"cloud[1-2]"}, NodeUpdate{State: SetResume}, `"cloud[1-2]"`},
		{"empty name", []string{"cloud1", ""}, NodeUpdate{State: SetResume}, "empty node name"},
		{"unknown state", []string{"cloud1"}, NodeUpdate{State: "BOGUS"}, "BOGUS"},
		{"multi-line reason", []string{"cloud1"}, NodeUpdate{State: SetDown, Reason: "a\nb"}, "one line"},
		{"address list", []string{"cloud1"}, NodeUpdate{Addr: "1.2.3.4,5.6.7.8"}, "NodeAddr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := fakeScontrolClient(t, "update-down", 0)
			err := s.Update(context.Background(), tt.nodes, tt.u)
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("err = %v, want one mentioning %s", err, tt.mention)
			}
			assertNotRun(t, rec)
		})
	}
	t.Run("nodes with bad name", func(t *testing.T) {
		s, rec := fakeScontrolClient(t, "show-all", 0)
		if _, err := s.Nodes(context.Background(), "ok1", "bad name"); err == nil || !strings.Contains(err.Error(), `"bad name"`) {
			t.Errorf("err = %v", err)
		}
		assertNotRun(t, rec)
	})
	t.Run("empty update is a no-op", func(t *testing.T) {
		s, rec := fakeScontrolClient(t, "update-down", 0)
		if err := s.Update(context.Background(), []string{"cloud1"}, NodeUpdate{}); err != nil {
			t.Error(err)
		}
		assertNotRun(t, rec)
	})
}

func TestScontrolPing(t *testing.T) {
	s, rec := fakeScontrolClient(t, "ping", 0)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := readRecord(t, rec).Args; !reflect.DeepEqual(got, []string{"ping"}) {
		t.Errorf("argv = %q", got)
	}
	s, _ = fakeScontrolClient(t, "ping-down", 0)
	err := s.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is DOWN") || strings.Contains(err.Error(), "****") {
		t.Errorf("err = %v, want the DOWN status line only", err)
	}
}

func TestScontrolTimeout(t *testing.T) {
	s, _ := fakeScontrolClient(t, "ping", 100*time.Millisecond, "SE_FAKE_SLEEP=1h")
	err := s.Ping(context.Background())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("err = %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _ = fakeScontrolClient(t, "ping", 0)
	if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func TestLookScontrol(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "my-scontrol")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if got, err := LookScontrol("my-scontrol"); err != nil || got != bin {
		t.Errorf("LookScontrol = %q, %v; want %s", got, err, bin)
	}
	if got, err := LookScontrol(bin); err != nil || got != bin {
		t.Errorf("LookScontrol(path) = %q, %v", got, err)
	}
	if _, err := LookScontrol("no-such-scontrol-xyz"); err == nil || !strings.Contains(err.Error(), "install") {
		t.Errorf("missing binary: err = %v, want a hint what to install", err)
	}
	if _, err := LookScontrol(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing path: no error")
	}
	if _, err := NewScontrol(ScontrolOptions{Path: bin, Env: []string{"NOEQUALS"}}); err == nil {
		t.Error("bad env entry accepted")
	}
}

func TestChunkNames(t *testing.T) {
	names := []string{"aaaa", "bbbb", "cccc", "dddd", "eeeeeeeeeeee"}
	got := chunkNames(names, 9)
	want := [][]string{{"aaaa", "bbbb"}, {"cccc", "dddd"}, {"eeeeeeeeeeee"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chunkNames = %q, want %q", got, want)
	}
}

// Reboot runs `scontrol reboot` with the options as separate words (no
// shell), and refuses bad requests before scontrol runs.
func TestScontrolRebootArgv(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		o     RebootOptions
		want  []string
	}{
		{"plain", []string{"cloud1"}, RebootOptions{}, []string{"reboot", "cloud1"}},
		{"health: ASAP with our reason", []string{"gpu3"},
			RebootOptions{ASAP: true, Reason: "slurm-elastic-health: xid: gpu3: Xid 79 (reboot); $(rm -rf /)"},
			[]string{"reboot", "ASAP", "reason=slurm-elastic-health: xid: gpu3: Xid 79 (reboot); $(rm -rf /)", "gpu3"}},
		{"nextstate down, two nodes", []string{"c1", "c2", "c1"}, RebootOptions{NextState: RebootDown, Reason: "x"},
			[]string{"reboot", "nextstate=DOWN", "reason=x", "c1,c2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := fakeScontrolClient(t, "update-down", 0)
			if err := s.Reboot(context.Background(), tt.nodes, tt.o); err != nil {
				t.Fatal(err)
			}
			if got := readRecord(t, rec).Args; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("argv = %q\nwant   %q", got, tt.want)
			}
		})
	}
	for _, bad := range []struct {
		name    string
		nodes   []string
		o       RebootOptions
		mention string
	}{
		{"no names", nil, RebootOptions{}, "no node names"},
		{"hostlist", []string{"c[1-2]"}, RebootOptions{}, `"c[1-2]"`},
		{"ALL is not a node", []string{"ALL", "x y"}, RebootOptions{}, `"x y"`},
		{"bad nextstate", []string{"c1"}, RebootOptions{NextState: "IDLE"}, "nextstate"},
		{"multi-line reason", []string{"c1"}, RebootOptions{Reason: "a\nb"}, "one line"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			s, rec := fakeScontrolClient(t, "update-down", 0)
			if err := s.Reboot(context.Background(), bad.nodes, bad.o); err == nil || !strings.Contains(err.Error(), bad.mention) {
				t.Errorf("err = %v, want one mentioning %s", err, bad.mention)
			}
			assertNotRun(t, rec)
		})
	}
}
