package slurm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// batchClient is a Scontrol over the fake scontrol with the given batch
// window; every run's argv is appended to the returned log.
func batchClient(t *testing.T, window time.Duration, env ...string) (*Scontrol, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "scontrol-22.05"))
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "runs.jsonl")
	env = append([]string{"SE_FAKE_SCONTROL=" + filepath.Join(dir, "update-addr"), "SE_FAKE_LOG=" + log,
		"SE_FAKE_FAIL_REPLY=" + filepath.Join(dir, "update-unknown")}, env...)
	s, err := NewScontrol(ScontrolOptions{Path: exe, Env: env, Timeout: 20 * time.Second, AddrBatchWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	return s, log
}

// addrRun is one `scontrol update` of addresses, split per node.
type addrRun struct {
	names, addrs, hosts []string
}

func readRuns(t *testing.T, log string) []addrRun {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatalf("scontrol never ran: %v", err)
	}
	defer f.Close()
	var runs []addrRun
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var argv []string
		if err := json.Unmarshal(sc.Bytes(), &argv); err != nil {
			t.Fatal(err)
		}
		if len(argv) > 3 && argv[3] == "show" {
			continue // a lookup of unknown nodes after a failed update
		}
		if len(argv) != 4 || argv[0] != "update" {
			t.Fatalf("unexpected scontrol run %q", argv)
		}
		var r addrRun
		for _, kv := range argv[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "NodeName":
				r.names = strings.Split(v, ",")
			case "NodeAddr":
				r.addrs = strings.Split(v, ",")
			case "NodeHostName":
				r.hosts = strings.Split(v, ",")
			default:
				t.Fatalf("unexpected argument %q in %q", kv, argv)
			}
		}
		if len(r.names) != len(r.addrs) || len(r.names) != len(r.hosts) {
			t.Fatalf("lists of unequal length: %q", argv)
		}
		runs = append(runs, r)
	}
	return runs
}

// updateAll updates cloud1..cloudN at once, node i to 10.0.0.i, and returns
// each caller's error.
func updateAll(ctx context.Context, s *Scontrol, names []string) map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(ctx, []string{n}, NodeUpdate{Addr: fmt.Sprintf("10.0.0.%d", i+1), Hostname: n + "-h"})
			mu.Lock()
			errs[n] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errs
}

func names(prefix string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// Concurrent address updates share one scontrol run, each node with its
// own address and host name.
func TestScontrolAddrBatch(t *testing.T) {
	s, log := batchClient(t, time.Second) // generous: all callers join the first batch
	nodes := names("cloud", 10)
	for n, err := range updateAll(context.Background(), s, nodes) {
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	runs := readRuns(t, log)
	if len(runs) != 1 || len(runs[0].names) != 10 {
		t.Fatalf("runs = %+v, want one run with all 10 nodes", runs)
	}
	for i, n := range runs[0].names {
		var k int
		fmt.Sscanf(n, "cloud%d", &k)
		if runs[0].addrs[i] != fmt.Sprintf("10.0.0.%d", k) || runs[0].hosts[i] != n+"-h" {
			t.Errorf("node %s got addr %s host %s", n, runs[0].addrs[i], runs[0].hosts[i])
		}
	}
}

// A failed batch falls back to one run per node: the bad node gets its
// error, the others are set.
func TestScontrolAddrBatchFallback(t *testing.T) {
	s, log := batchClient(t, time.Second, "SE_FAKE_FAIL_ON=bad3")
	nodes := []string{"cloud1", "cloud2", "bad3", "cloud4", "cloud5"}
	errs := updateAll(context.Background(), s, nodes)
	for _, n := range nodes {
		err := errs[n]
		if n == "bad3" {
			if !errors.Is(err, ErrNodeNotFound) || !strings.Contains(err.Error(), "bad3") || strings.Contains(err.Error(), "cloud") {
				t.Errorf("bad3: err = %v, want ErrNodeNotFound naming bad3 only", err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	runs := readRuns(t, log)
	// The batch, then each node alone.
	single := map[string]int{}
	batched := 0
	for _, r := range runs {
		if len(r.names) == 1 {
			single[r.names[0]]++
		} else {
			batched++
		}
	}
	if batched != 1 || len(single) != 5 {
		t.Errorf("batched runs %d, single-node runs %v; want 1 and one for each node", batched, single)
	}
	if s.batch.failures != 1 {
		t.Errorf("batch failures = %d, want 1", s.batch.failures)
	}
}

// A caller whose context ends while it waits is withdrawn from the batch.
func TestScontrolAddrBatchCancel(t *testing.T) {
	s, log := batchClient(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Update(ctx, []string{"gone1"}, NodeUpdate{Addr: "10.0.0.9", Hostname: "gone1"}) }()
	time.Sleep(50 * time.Millisecond) // gone1 waits in the batch window
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "gone1") {
		t.Errorf("cancelled caller: err = %v", err)
	}
	for n, err := range updateAll(context.Background(), s, names("cloud", 3)) {
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, r := range readRuns(t, log) {
		for _, n := range r.names {
			if n == "gone1" {
				t.Errorf("withdrawn node updated: %+v", r)
			}
		}
	}
}

// Two updates of one node never share a run, and the later one is applied
// last.
func TestScontrolAddrBatchSameNode(t *testing.T) {
	s, log := batchClient(t, time.Second)
	var wg sync.WaitGroup
	for i, addr := range []string{"10.0.0.1", "10.0.0.2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 100 * time.Millisecond) // in order, within one window
			if err := s.Update(context.Background(), []string{"cloud1"}, NodeUpdate{Addr: addr, Hostname: "cloud1"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	runs := readRuns(t, log)
	if len(runs) != 2 || runs[1].addrs[0] != "10.0.0.2" {
		t.Errorf("runs = %+v, want two, the last with 10.0.0.2", runs)
	}
}

// Only single-node address updates are batched; others, and all with
// batching off, run as before.
func TestScontrolAddrBatchScope(t *testing.T) {
	s, log := batchClient(t, -1)
	for n, err := range updateAll(context.Background(), s, names("cloud", 3)) {
		if err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if runs := readRuns(t, log); len(runs) != 3 {
		t.Errorf("batching off: %d runs, want 3", len(runs))
	}
	if s.batch != nil {
		t.Error("batcher present with a negative window")
	}
	s, log = batchClient(t, 0)
	if s.batch == nil || s.batch.window != DefaultAddrBatchWindow {
		t.Fatalf("default window: %+v", s.batch)
	}
	if err := s.Update(context.Background(), []string{"cloud1"}, NodeUpdate{Addr: "10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), []string{"cloud1", "cloud2"}, NodeUpdate{Addr: "10.0.0.1", Hostname: "x"}); err != nil {
		t.Fatal(err)
	}
	if s.batch.runs != 0 {
		t.Errorf("%d batched runs for updates that are not batched", s.batch.runs)
	}
}
