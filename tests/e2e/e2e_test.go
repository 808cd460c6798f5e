// Package e2e drives a real elastic Slurm cluster (24.11, or the release in $SE_SLURM:
// 22.05, 26.05): slurmctld calls
// slurm-elastic's hooks as SlurmUser, the hooks start node containers
// through a real Podman API service, and jobs run in them. No fakes.
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

var cl *elastic.Cluster

func TestMain(m *testing.M) {
	if flag.Parse(); testing.Short() { // `make unit`: no cluster, no containers
		fmt.Println("e2e: not run with -short: every test here needs the elastic cluster")
		os.Exit(0)
	}
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		fmt.Fprintln(os.Stderr, "e2e: SE_BIN_DIR is not set: run the e2e tests with `make test` or `make e2e`, which build the binaries first")
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	var err error
	// SE_E2E_NAME lets two runs on one machine keep apart (default se-e2e).
	name := os.Getenv("SE_E2E_NAME")
	if name == "" {
		name = "se-e2e"
	}
	s := elastic.Settings{Name: name}
	// The img group (TestGroupImages) where images work (docs/operations.md,
	// "Images"): not 22.05, whose helpers plugin shows every image feature
	// active on powered-down CLOUD nodes from the start.
	if r, err := harness.SlurmRecipe(""); err == nil && r.Slurm != "22.05" {
		s.Images = true
	}
	// SE_E2E_DEB names slurm-elastic's head .deb (`make deb-head`): head then installs it
	// with dpkg, as an admin would, and the tests run the hooks it installed in
	// /usr/libexec/slurm-elastic instead of SE_BIN_DIR mounted there. SE_BIN_DIR still
	// renders the slurm.conf lines on this host.
	deb := os.Getenv("SE_E2E_DEB")
	if deb != "" {
		s.Debs = []string{deb}
	}
	cl, err = elastic.Start(ctx, s, binDir, os.Stderr)
	if err == nil && deb != "" {
		var pkg string
		if pkg, err = cl.VerifyPackage(ctx, deb); err == nil {
			fmt.Fprintf(os.Stderr, "e2e: head runs the packaged hooks: %s\n", pkg)
		}
	}
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start cluster: %v\n", err)
		if cl != nil {
			cl.Stop(context.Background())
		}
		os.Exit(1)
	}
	code := m.Run()
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: diagnostics after failure:\n%s\n", cl.Diagnostics(ctx))
	}
	if err := cl.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stop cluster: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func ctxT(t *testing.T, d time.Duration) context.Context { return elastic.Timeout(t, d) }

// run runs argv in head as root and fails the test on error.
func run(t *testing.T, args ...string) string {
	t.Helper()
	return cl.MustExec(t, args...)
}

// hook runs one of our hooks in head as SlurmUser, as slurmctld would, and
// returns its exit code.
func hook(t *testing.T, name string, args ...string) int {
	t.Helper()
	_, err := cl.ExecAs(ctxT(t, 2*time.Minute), "slurm", append([]string{"/usr/libexec/slurm-elastic/" + name}, args...)...)
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	t.Logf("%s %v: %v", name, args, err)
	return -1
}

// slurmNode is a node as the tests look at it: State holds the base state and the flags.
type slurmNode struct {
	Name     string
	State    []string
	Reason   string
	Address  string
	Hostname string
}

func (n slurmNode) has(s string) bool { return slices.Contains(n.State, s) }

// nodes reads the nodes of the hostlist expression names through slurm-elastic's own
// scontrol backend (text output, which every release has: 22.05's scontrol has no
// --json), run in head through the cluster's wrapper.
func nodes(t *testing.T, names string) []slurmNode {
	t.Helper()
	list, err := hostlist.Expand(names)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := slurm.NewScontrol(slurm.ScontrolOptions{Path: cl.ScontrolWrapper(), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := sc.Nodes(ctxT(t, time.Minute), list...)
	if err != nil {
		t.Fatalf("scontrol show node %s: %v", names, err)
	}
	var out []slurmNode
	for _, n := range ns {
		out = append(out, slurmNode{Name: n.Name, State: append([]string{n.State}, n.Flags...),
			Reason: n.Reason, Address: n.Addr, Hostname: n.Hostname})
	}
	return out
}

func node(t *testing.T, name string) slurmNode {
	t.Helper()
	ns := nodes(t, name)
	if len(ns) != 1 {
		t.Fatalf("node %s: got %d records", name, len(ns))
	}
	return ns[0]
}

// job is what the tests read of a job.
type job = elastic.Job

// getJob reads `scontrol -o show job ID` (text: 22.05's scontrol has no --json).
func getJob(t *testing.T, id string) job {
	t.Helper()
	out := run(t, "scontrol", "-o", "show", "job", id)
	j, err := parseJob(out)
	if err != nil {
		t.Fatalf("scontrol -o show job %s: %v\n%s", id, err, out)
	}
	return j
}

// parseJob reads the fields of job from one line of `scontrol -o show job`.
var parseJob = elastic.ParseJob

// sbatch submits a job as an ordinary user would and returns its id.
func sbatch(t *testing.T, args ...string) string {
	t.Helper()
	out := run(t, append([]string{"sbatch", "--parsable"}, args...)...)
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";")
	return id
}

// waitFor polls cond every 500ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	elastic.WaitFor(t, d, what, cond)
}

func waitJob(t *testing.T, id string, d time.Duration, want string) job {
	t.Helper()
	var j job
	waitFor(t, d, "job "+id+" "+want, func() (bool, string) {
		j = getJob(t, id)
		if slices.Contains(j.State, "FAILED") || slices.Contains(j.State, "CANCELLED") {
			t.Fatalf("job %s ended %v (reason %s)", id, j.State, j.Reason)
		}
		return slices.Contains(j.State, want), fmt.Sprintf("%+v", j)
	})
	return j
}

// containers returns, per node label, the node containers of the cluster.
func containers(t *testing.T) map[string][]string {
	t.Helper()
	out, err := cl.Podman(ctxT(t, time.Minute), "ps", "-a", "--filter", "label=slurm-elastic.cluster="+cl.Name,
		"--format", `{{index .Labels "slurm-elastic.node"}} {{.Names}} {{.State}}`)
	if err != nil {
		t.Fatalf("podman ps: %v", err)
	}
	m := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			m[f[0]] = append(m[f[0]], strings.Join(f[1:], " "))
		}
	}
	return m
}

// waitCloudIdle waits until every cloud node is powered down and idle and
// no node container is left: the state every test starts and ends in.
func waitCloudIdle(t *testing.T, d time.Duration) {
	t.Helper()
	waitFor(t, d, "cloud nodes powered down with no containers", func() (bool, string) {
		ns := nodes(t, "cloud[1-4]")
		var not []string // every node not there yet, with its reason: a flake is read from the message
		for _, n := range ns {
			if !n.has("POWERED_DOWN") || !n.has("IDLE") || n.has("POWERING_DOWN") {
				not = append(not, fmt.Sprintf("%s %v reason %q", n.Name, n.State, n.Reason))
			}
		}
		if len(not) > 0 {
			return false, strings.Join(not, "; ")
		}
		if c := containers(t); len(c) != 0 {
			return false, fmt.Sprintf("containers %v", c)
		}
		return true, ""
	})
}

// reset puts the cluster in the state every test starts from: the normal
// config, no jobs, no node DOWN or drained, cloud nodes powered down. It
// only repairs what an earlier failed test left; each test still checks
// its own end state with waitCloudIdle.
func reset(t *testing.T) {
	t.Helper()
	configure(t, elastic.Settings{})
	run(t, "scancel", "--user=root")
	waitFor(t, time.Minute, "an empty queue", func() (bool, string) {
		out := run(t, "squeue", "-h", "-o", "%i %T")
		return strings.TrimSpace(out) == "", out
	})
	for _, n := range nodes(t, "cloud[1-4],broken[1-2]") {
		if n.has("DOWN") || n.has("DRAIN") {
			t.Logf("reset: resuming %s left %v (%s)", n.Name, n.State, n.Reason)
			run(t, "scontrol", "update", "nodename="+n.Name, "state=resume")
		}
	}
	waitCloudIdle(t, 2*time.Minute)
}

func hookLog(t *testing.T) string { return cl.HookLog(t) }

// logHas reports whether a JSON log line has message msg for node.
var logHas = elastic.LogHas

func configure(t *testing.T, s elastic.Settings) {
	t.Helper()
	s.Name = cl.Name
	s.Images = cl.Settings.Images // slurm.conf has the img group's nodes for the whole run
	if err := cl.Configure(ctxT(t, time.Minute), s); err != nil {
		t.Fatal(err)
	}
}

// TestPowerCycle: a two-node job on powered-down CLOUD nodes completes, its
// output names both nodes, and after SuspendTime the containers are gone
// and the nodes are idle~ again — once through each Slurm backend the release
// has. On 22.05, whose slurmrestd has no node update, the second round is
// "auto", which must choose scontrol and say why.
func TestPowerCycle(t *testing.T) {
	backends := map[string]string{"scontrol": "scontrol", "rest": "rest"} // configured: used
	if cl.Slurm == "22.05" {
		backends = map[string]string{"scontrol": "scontrol", "auto": "scontrol"}
	}
	for _, backend := range slices.Sorted(maps.Keys(backends)) {
		used := backends[backend]
		t.Run(backend, func(t *testing.T) {
			reset(t)
			configure(t, elastic.Settings{Backend: backend})
			logStart := len(hookLog(t))

			id := sbatch(t, "-p", "cloud", "-N2", "-o", "/shared/job-%j.out", "--wrap", "srun hostname")
			j := waitJob(t, id, 3*time.Minute, "COMPLETED")
			out, err := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
			if err != nil {
				t.Fatal(err)
			}
			hosts := strings.Fields(string(out))
			slices.Sort(hosts)
			hosts = slices.Compact(hosts)
			if len(hosts) != 2 || !strings.HasPrefix(hosts[0], "cloud") || !strings.HasPrefix(hosts[1], "cloud") {
				t.Fatalf("job %s on %s printed %q, want two distinct cloud nodes", id, j.Nodes, out)
			}
			t.Logf("job %s ran on %s: %v", id, j.Nodes, hosts)

			log := hookLog(t)[logStart:]
			for _, h := range hosts {
				if !logHas(log, "node launched and addressed", h) {
					t.Errorf("hook log lacks the launch of %s:\n%s", h, log)
				}
			}
			if !strings.Contains(log, `"backend":"`+used+`"`) {
				t.Errorf("hook log does not show backend %s in use:\n%s", used, log)
			}
			if p := restParser[cl.Slurm]; used == "rest" && !strings.Contains(log, `"parser":"`+p+`"`) {
				t.Errorf("Slurm %s: hook log does not show data parser %s in use:\n%s", cl.Slurm, p, log)
			}
			if backend == "auto" && !strings.Contains(log, "no data parser with a node update") {
				t.Errorf("Slurm %s: auto's choice of scontrol is not logged with its reason:\n%s", cl.Slurm, log)
			}
			waitCloudIdle(t, 2*time.Minute)
			log = hookLog(t)[logStart:]
			for _, h := range hosts {
				if !logHas(log, "node instance removed", h) {
					t.Errorf("hook log lacks the suspend of %s", h)
				}
			}
		})
	}
}

// restParser is the newest slurmrestd data parser both the release and the REST backend
// speak (22.05: none).
var restParser = map[string]string{"24.11": "v0.0.42", "26.05": "v0.0.45"}

// TestBrokenGroupFailsFast: the spill partition prefers the broken group
// (lower Weight) whose image does not exist. Its node must go DOWN with our
// Config reason well before ResumeTimeout, leave no container, and the job
// must be requeued onto a working node and complete.
func TestBrokenGroupFailsFast(t *testing.T) {
	reset(t)
	logStart := len(hookLog(t))
	start := time.Now()
	id := sbatch(t, "-p", "spill", "-N1", "-o", "/shared/job-%j.out", "--wrap", "hostname")
	var down time.Duration
	waitFor(t, 60*time.Second, "a broken node DOWN with our reason (before ResumeTimeout=60s)", func() (bool, string) {
		for _, n := range nodes(t, "broken[1-2]") {
			if n.has("DOWN") && strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Config) ") {
				down = time.Since(start)
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", nodes(t, "broken[1-2]"))
	})
	t.Logf("broken node DOWN %v after submit", down.Round(time.Millisecond))
	// Its sibling would fail the same way: it is out of scheduling too, so
	// the job is requeued once, not once per broken node.
	for _, n := range nodes(t, "broken[1-2]") {
		if !n.has("DOWN") || !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Config) ") {
			t.Errorf("node %s: %v %q, want DOWN with our Config reason", n.Name, n.State, n.Reason)
		}
	}
	for n := range containers(t) {
		if strings.HasPrefix(n, "broken") {
			t.Fatalf("container left for %s", n)
		}
	}
	j := waitJob(t, id, 3*time.Minute, "COMPLETED")
	out, _ := os.ReadFile(filepath.Join(cl.SharedDir, "job-"+id+".out"))
	if h := strings.TrimSpace(string(out)); h != "cloud3" && h != "cloud4" {
		t.Fatalf("job %s (nodes %s) printed %q, want cloud3 or cloud4", id, j.Nodes, out)
	}
	t.Logf("job %s requeued %d time(s), completed on %s", id, j.Restarts, strings.TrimSpace(string(out)))
	if j.Restarts != 1 {
		t.Errorf("job %s was requeued %d times, want once", id, j.Restarts)
	}
	// The prolog (PrologSlurmctld) waiting for the broken node ended when
	// the node went DOWN (or slurmctld stopped it when it requeued the job),
	// so Slurm requeued the job as without one.
	if l := hookLog(t)[logStart:]; !jobLogHas(l, "a node of the job is down: Slurm requeues the job", id) &&
		!jobLogHas(l, "slurmctld stopped the prolog: the job was requeued or cancelled while it waited", id) {
		t.Errorf("the prolog did not log how its wait for job %s ended:\n%s", id, l)
	}
	for n := range containers(t) {
		if strings.HasPrefix(n, "broken") {
			t.Fatalf("container left for %s", n)
		}
	}
	run(t, "scontrol", "update", "nodename=broken[1-2]", "state=resume")
	waitCloudIdle(t, 2*time.Minute)
}

// TestEightJobsOnFourNodes: 8 single-node jobs at once on 4 cloud nodes all
// complete, and no node ever has two containers.
func TestEightJobsOnFourNodes(t *testing.T) {
	reset(t)
	var ids []string
	for i := 0; i < 8; i++ {
		ids = append(ids, sbatch(t, "-p", "cloud", "-N1", "-o", "/shared/job-%j.out", "--wrap", "hostname; sleep 2"))
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		for n, cs := range containers(t) {
			if len(cs) > 1 {
				t.Fatalf("node %s has %d containers: %v", n, len(cs), cs)
			}
		}
		done := 0
		for _, id := range ids {
			j := getJob(t, id)
			if slices.Contains(j.State, "FAILED") || slices.Contains(j.State, "CANCELLED") {
				t.Fatalf("job %s: %v", id, j.State)
			}
			if slices.Contains(j.State, "COMPLETED") {
				done++
			}
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed after 5 minutes", done, len(ids))
		}
		time.Sleep(time.Second)
	}
	waitCloudIdle(t, 2*time.Minute)
}

// TestBadInput: every kind of bad input gives a clear logged error and,
// where a node is involved, a node reason — never a hang, crash or leak.
func TestBadInput(t *testing.T) {
	reset(t)
	t.Run("invalid hostlist", func(t *testing.T) {
		before := len(hookLog(t))
		if code := hook(t, "slurm-elastic-resume", "cloud[1-"); code != 2 {
			t.Fatalf("exit code %d, want 2", code)
		}
		if l := hookLog(t)[before:]; !strings.Contains(l, "invalid hostlist argument") || !strings.Contains(l, "cloud[1-") {
			t.Fatalf("log:\n%s", l)
		}
	})
	t.Run("unknown node", func(t *testing.T) {
		before := len(hookLog(t))
		if code := hook(t, "slurm-elastic-resume", "nosuch7"); code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
		if l := hookLog(t)[before:]; !strings.Contains(l, "node nosuch7 is in no node group") {
			t.Fatalf("log:\n%s", l)
		}
		if c := containers(t); len(c) != 0 {
			t.Fatalf("containers: %v", c)
		}
	})
	t.Run("malformed config", func(t *testing.T) {
		configure(t, elastic.Settings{Raw: "cluster: se-e2e\ngroups: [\n"})
		before := len(hookLog(t))
		if code := hook(t, "slurm-elastic-resume", "cloud4"); code != 3 {
			t.Fatalf("exit code %d, want 3 (config invalid)", code)
		}
		if l := hookLog(t)[before:]; !strings.Contains(l, "configuration is invalid") || !strings.Contains(l, "config.yaml") {
			t.Fatalf("log:\n%s", l)
		}
		n := node(t, "cloud4")
		if !n.has("DOWN") || !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Config) ") || !strings.Contains(n.Reason, "config.yaml") {
			t.Fatalf("cloud4: %+v", n)
		}
		configure(t, elastic.Settings{})
		run(t, "scontrol", "update", "nodename=cloud4", "state=resume")
	})
	t.Run("podman API down", func(t *testing.T) {
		// A Transient failure: the node is set DOWN (job requeued at once)
		// and powered down, so it returns to the pool by itself; once Podman
		// is back the job runs without an admin.
		reset(t)
		configure(t, elastic.Settings{PodmanURI: "unix:///run/podman/no-such.sock"})
		start := time.Now()
		id := sbatch(t, "-p", "cloud", "-N1", "-w", "cloud1", "-o", "/shared/job-%j.out", "--wrap", "hostname")
		waitFor(t, 60*time.Second, "cloud1 with our Transient reason", func() (bool, string) {
			n := node(t, "cloud1")
			return strings.HasPrefix(n.Reason, "slurm-elastic: (Code:Transient) "), fmt.Sprintf("%+v", n)
		})
		t.Logf("cloud1 failed %v after submit: %s", time.Since(start).Round(time.Millisecond), node(t, "cloud1").Reason)
		waitFor(t, 60*time.Second, "job requeued", func() (bool, string) {
			j := getJob(t, id)
			return slices.Contains(j.State, "PENDING") && j.Restarts >= 1, fmt.Sprintf("%+v", j)
		})
		if c := containers(t); len(c) != 0 {
			t.Fatalf("containers: %v", c)
		}
		configure(t, elastic.Settings{})
		j := waitJob(t, id, 4*time.Minute, "COMPLETED")
		t.Logf("job %s completed after %d requeue(s)", id, j.Restarts)
		waitCloudIdle(t, 2*time.Minute)
	})
	t.Run("slurmrestd down", func(t *testing.T) {
		reset(t)
		// Forced REST to a closed port: a clear error in the log, quickly,
		// and nothing launched.
		configure(t, elastic.Settings{Backend: "rest", RESTURL: "http://127.0.0.1:9"})
		before := len(hookLog(t))
		start := time.Now()
		code := hook(t, "slurm-elastic-resume", "cloud2")
		if code == 0 {
			t.Fatal("resume succeeded without Slurm")
		}
		t.Logf("resume with slurmrestd down exited %d after %v", code, time.Since(start).Round(time.Millisecond))
		if l := hookLog(t)[before:]; !strings.Contains(l, "127.0.0.1:9") {
			t.Fatalf("log does not name the unreachable slurmrestd:\n%s", l)
		}
		if c := containers(t); len(c) != 0 {
			t.Fatalf("containers: %v", c)
		}
		if n := node(t, "cloud2"); !strings.HasPrefix(n.Reason, "slurm-elastic: (Code:SlurmUnreachable) ") {
			t.Fatalf("cloud2: %+v", n)
		}
		// auto falls back to scontrol: a job still runs.
		configure(t, elastic.Settings{Backend: "auto", RESTURL: "http://127.0.0.1:9"})
		id := sbatch(t, "-p", "cloud", "-N1", "-o", "/shared/job-%j.out", "--wrap", "hostname")
		waitJob(t, id, 3*time.Minute, "COMPLETED")
		configure(t, elastic.Settings{})
		waitCloudIdle(t, 2*time.Minute)
	})
}
