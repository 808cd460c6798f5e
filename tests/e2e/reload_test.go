package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// daemonPidFile is where runningDaemon's shell writes the daemon's pid in head.
const daemonPidFile = "/run/slurm-elastic-e2e-daemon.pid"

// runningDaemon is a reconciler daemon running in head (startReconciler).
type runningDaemon struct {
	pid      string        // in head
	logStart int           // length of the hook log (log.file, shared with the daemon) at its start
	done     chan struct{} // closed when its podman exec ends; err is then set
	err      error
}

// startReconciler runs the reconciler in head as the shipped unit does
// (packaging/systemd/slurm-elastic.service: User=slurm, UMask=0027, ExecStart
// `slurm-elastic --config CONFIG daemon`, logging to log.file), with a 2 s
// interval, a 5 s orphan grace and metrics on a free loopback port, until
// the test ends (SIGTERM by its pid). The fixed shell line only records the
// daemon's pid (exec keeps it) so the test can signal it; the values are
// arguments. It blocks until the daemon logged "reconciler started".
func startReconciler(t *testing.T) *runningDaemon {
	t.Helper()
	d := &runningDaemon{logStart: len(hookLog(t)), done: make(chan struct{})}
	run(t, "install", "-o", "slurm", "-m", "0644", "/dev/null", daemonPidFile) // the daemon's user writes it; /run is root's
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, d.err = cl.ExecAs(ctx, "slurm", "/bin/sh", "-c", `echo $$ > "$1" && shift && umask 0027 && exec "$@"`, "sh",
			daemonPidFile, adminBin, "--config", harness.ConfigInHead, "daemon",
			"--interval", "2s", "--orphan-grace", "5s", "--metrics-listen", "127.0.0.1:0")
		close(d.done)
	}()
	t.Cleanup(func() {
		bg := context.Background()
		if pid, err := cl.Exec(bg, "cat", daemonPidFile); err == nil && strings.TrimSpace(pid) != "" {
			cl.Exec(bg, "kill", "-TERM", strings.TrimSpace(pid))
		}
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Errorf("the reconciler (pid %s in head) did not stop on SIGTERM", d.pid)
		}
		cancel()
		cl.Exec(bg, "rm", "-f", daemonPidFile)
	})
	waitFor(t, time.Minute, "the reconciler started", func() (bool, string) {
		select {
		case <-d.done:
			t.Fatalf("the reconciler exited at start: %v\n%s", d.err, d.log(t))
		default:
		}
		for _, l := range d.lines(t, "reconciler started") {
			if pid, ok := l["pid"].(float64); ok {
				d.pid = strconv.Itoa(int(pid))
				return true, ""
			}
		}
		return false, d.log(t)
	})
	if pid := strings.TrimSpace(run(t, "cat", daemonPidFile)); pid != d.pid {
		t.Fatalf("pid file %s says %s, the daemon logs pid %s", daemonPidFile, pid, d.pid)
	}
	return d
}

// log is the daemon's part of the log since it started.
func (d *runningDaemon) log(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.Split(hookLog(t)[d.logStart:], "\n") {
		if strings.Contains(l, `"program":"slurm-elastic-daemon"`) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// lines are the daemon's JSON log lines with message msg since it started.
func (d *runningDaemon) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(d.log(t), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg && (d.pid == "" || fmt.Sprint(m["pid"]) == d.pid) {
			out = append(out, m)
		}
	}
	return out
}

var metricsAddrRE = regexp.MustCompile(`^127\.0\.0\.1:[0-9]+$`)

// metric reads one sample of the daemon's /metrics in head (its listener is on
// loopback there) with bash's /dev/tcp: the head image has no HTTP client.
func (d *runningDaemon) metric(t *testing.T, name string) string {
	t.Helper()
	ls := d.lines(t, "serving metrics")
	if len(ls) != 1 {
		t.Fatalf("%d \"serving metrics\" lines:\n%s", len(ls), d.log(t))
	}
	addr, _ := ls[0]["addr"].(string)
	if !metricsAddrRE.MatchString(addr) {
		t.Fatalf("metrics address %q is not on loopback", addr)
	}
	_, port, _ := strings.Cut(addr, ":")
	out := run(t, "bash", "-c", `exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3`, "bash", port)
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics:\n%s", name, out)
	return ""
}

// withoutGroup is the config text cfg without its group name.
func withoutGroup(t *testing.T, cfg, name string) string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0]
	found := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "groups" {
			continue
		}
		seq := top.Content[i+1]
		for j, g := range seq.Content {
			for k := 0; k+1 < len(g.Content); k += 2 {
				if g.Content[k].Value == "name" && g.Content[k+1].Value == name {
					seq.Content = append(seq.Content[:j], seq.Content[j+1:]...)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
	}
	if !found {
		t.Fatalf("the config has no group %s", name)
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// replaceConfig replaces config.yaml in head with text the way an editor or
// config management does: a new file (0640 root:slurm) renamed over the old
// one, so no reader ever sees it half written.
func replaceConfig(t *testing.T, text string) {
	t.Helper()
	tmp := harness.ConfigInHead + ".new"
	if err := cl.WriteFileInHead(ctxT(t, time.Minute), tmp, []byte(text), 0o640, "root:slurm"); err != nil {
		t.Fatal(err)
	}
	run(t, "mv", "-f", tmp, harness.ConfigInHead)
}

// orphansSince are the reconciler's orphan events since t0.
func orphansSince(t *testing.T, t0 time.Time) []event {
	t.Helper()
	var out []event
	for _, ev := range reconcileEvents(t, "", "orphan") {
		if !ev.Time.Before(t0) {
			out = append(out, ev)
		}
	}
	return out
}

// TestReconcileConfigReload (issue 11, defect 1): the reconciler runs as the
// unit runs it, started with a config that lacks the group cloud (which
// slurm.conf has). The admin rewrites the file with the group (no restart)
// and submits a job to its partition at once: the hooks launch the node, the
// daemon reloads the file by itself, the job completes, and the daemon never
// took the node's container for an orphan (before the fix it removed it as
// "in no group, unknown to Slurm" once older than the orphan grace, at every
// launch, so the job never ran). A bad edit is rejected and the config in
// effect stays (log line, slurm_elastic_config_reload_failed 1) until the
// file is good again; SIGHUP reloads too.
func TestReconcileConfigReload(t *testing.T) {
	reset(t)
	start := time.Now()
	full := run(t, "cat", harness.ConfigInHead) // reset wrote the full config
	configure(t, elastic.Settings{Raw: withoutGroup(t, full, "cloud")})
	t.Cleanup(func() { configure(t, elastic.Settings{}) })
	d := startReconciler(t)

	// The admin's edit: the group added, no restart; a job for it at once.
	replaceConfig(t, full)
	id := sbatch(t, "-p", "cloud", "-N1", "-o", "/shared/job-%j.out", "--wrap", "sleep 15; hostname")
	var j job
	waitFor(t, 4*time.Minute, "job "+id+" COMPLETED", func() (bool, string) {
		if ev := orphansSince(t, start); len(ev) > 0 {
			t.Fatalf("the reconciler removed containers as orphans while job %s ran: %+v\n%s", id, ev, d.log(t))
		}
		j = getJob(t, id)
		for _, bad := range []string{"FAILED", "CANCELLED", "NODE_FAIL", "BOOT_FAIL", "TIMEOUT"} {
			if slices.Contains(j.State, bad) {
				t.Fatalf("job %s ended %v (reason %s)\n%s", id, j.State, j.Reason, d.log(t))
			}
		}
		return slices.Contains(j.State, "COMPLETED"), fmt.Sprintf("%+v", j)
	})
	if j.Restarts != 0 {
		t.Errorf("job %s was requeued %d times", id, j.Restarts)
	}
	reloads := d.lines(t, "config reloaded")
	if len(reloads) == 0 || !strings.HasPrefix(fmt.Sprint(reloads[0]["cause"]), "config file ") {
		t.Fatalf("no reload on the file's change:\n%s", d.log(t))
	}
	t.Logf("job %s ran on %s; reload: %v", id, j.Nodes, reloads[0])
	if ev := reconcileEvents(t, j.Nodes, "unknown"); len(ev) > 0 {
		// Only if a round looked after the launch and before the file changed: reported, not touched.
		t.Logf("%s reported unknown before the reload: %+v", j.Nodes, ev)
	}
	if v := d.metric(t, "slurm_elastic_config_reload_failed"); v != "0" {
		t.Errorf("slurm_elastic_config_reload_failed %s after a good file, want 0", v)
	}

	// A bad edit: the config in effect stays, the failure is logged and set in the metric.
	replaceConfig(t, full+"no_such_key: true\n")
	waitFor(t, time.Minute, "the bad file's reload to fail", func() (bool, string) {
		return len(d.lines(t, "config reload failed: the config in effect stays")) > 0, d.log(t)
	})
	if l := d.lines(t, "config reload failed: the config in effect stays"); len(l) != 1 || !strings.Contains(fmt.Sprint(l[0]["error"]), "no_such_key: unknown key") || l[0]["config"] != harness.ConfigInHead {
		t.Errorf("want one failed reload naming the file and the key: %v", l)
	}
	if v := d.metric(t, "slurm_elastic_config_reload_failed"); v != "1" {
		t.Errorf("slurm_elastic_config_reload_failed %s after a bad file, want 1", v)
	}
	// The file good again: taken at the next round.
	replaceConfig(t, full)
	waitFor(t, time.Minute, "a reload of the good file", func() (bool, string) {
		return len(d.lines(t, "config reloaded")) > len(reloads), d.log(t)
	})
	if v := d.metric(t, "slurm_elastic_config_reload_failed"); v != "0" {
		t.Errorf("slurm_elastic_config_reload_failed %s after the file was fixed, want 0", v)
	}

	// SIGHUP reloads as well.
	run(t, "kill", "-HUP", d.pid)
	waitFor(t, time.Minute, "a reload on SIGHUP", func() (bool, string) {
		for _, l := range d.lines(t, "config reloaded") {
			if l["cause"] == "SIGHUP" {
				return true, ""
			}
		}
		return false, d.log(t)
	})
	waitCloudIdle(t, 2*time.Minute)
	if ev := orphansSince(t, start); len(ev) > 0 {
		t.Errorf("orphan removals during the test: %+v", ev)
	}
	for _, lvl := range []string{`"level":"ERROR"`, `"level":"WARN"`} {
		for _, l := range strings.Split(d.log(t), "\n") {
			// Expected: the bad file's reload; an unknown report if a round looked between the launch and the reload.
			if strings.Contains(l, lvl) && !strings.Contains(l, "config reload failed") && !strings.Contains(l, `"kind":"unknown"`) {
				t.Errorf("reconciler: %s", l)
			}
		}
	}
}
