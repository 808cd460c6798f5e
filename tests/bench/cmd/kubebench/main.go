// Command kubebench is benchmark 6 of docs/benchmarks.md (issue 14): the
// resume of the same number of nodes (32) on Kubernetes and on Podman, and
// bare client-go creates as the floor, in one run on this machine. It
// starts a Slurm head in Podman (tests/harness: slurmctld, the private
// Podman service, the node image) and a single-node Kubernetes (tests/kube)
// with that image imported, then runs one warm-up round and several timed
// rounds (each starting with the next method) of:
//
//   - hook-kube: bin/slurm-elastic-resume k[1-N] as slurmctld runs it (its
//     one argument the hostlist, its config the only input), for a group
//     with runtime: kubernetes. It returns when every pod runs with an IP
//     and Slurm has its NodeAddr (-backend rest: slurmrestd, what an admin
//     on 24.11 gets; or scontrol);
//   - hook-podman: the same hook for p[1-N], a group on the head's Podman;
//   - bare-kube: the floor: client-go's typed clientset creates the same N
//     pods (the specs the hook created, read back, node binding cleared)
//     all at once and waits, on one watch, until every pod runs with an IP;
//   - bare-podman (with -bareapi): tests/bench/cmd/bareapi, parallel Podman
//     create + start + inspect of the same containers.
//
// The hooks run on this host, not in the head: the test API server listens
// on the host's loopback. The Slurm updates go to the head's slurmrestd
// (published on the host's loopback) or, with -backend scontrol, through
// the harness's scontrol wrapper: a `podman exec` per call, which costs
// this machine far more CPU than scontrol beside slurmctld would. For the kube methods a side
// watch records when the last pod was created, scheduled and running, so
// the table says where the time goes. Between runs every pod and container
// is removed (pods gone from the API and no containerd task left; no
// Podman container left) and the machine gets -settle to calm down. A
// failed run or check is breakage (exit 1); slow is not.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/slurm-elastic/slurm-elastic/runtime"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
	"github.com/slurm-elastic/slurm-elastic/tests/kube"
)

// namespace and munge Secret of the Kubernetes group (the config's defaults).
const namespace, mungeSecret = "slurm-elastic", "slurm-elastic-munge"

// Run is one timed run.
type Run struct {
	Method string  `json:"method"`
	Rep    int     `json:"rep"` // 0: warm-up, not summarised
	WallMS float64 `json:"wall_ms"`
	// Side watch (kube methods), from the run's start: when the first and
	// the last pod was created (seen by the API), the last bound to the
	// node, the first and the last running with an IP.
	FirstCreatedMS float64 `json:"first_created_ms,omitempty"`
	CreatedMS      float64 `json:"last_created_ms,omitempty"`
	ScheduledMS    float64 `json:"last_scheduled_ms,omitempty"`
	FirstRunningMS float64 `json:"first_running_ms,omitempty"`
	RunningMS      float64 `json:"last_running_ms,omitempty"`
	Load1          string  `json:"load1"`
}

func main() {
	binDir := flag.String("bin", os.Getenv("SE_BIN_DIR"), "dir with the built slurm-elastic binaries (make build)")
	bareapi := flag.String("bareapi", "", "tests/bench/cmd/bareapi binary: adds bare-podman ('' = leave it out)")
	bin2 := flag.String("bin2", "", "a second dir of built binaries (e.g. before a change): adds hook-kube-bin2, its resume hook ('' = leave it out)")
	name := flag.String("name", "se-bench-k", "Slurm head (Podman) cluster name; the Kubernetes cluster is NAME+\"k\"")
	nodes := flag.Int("nodes", 32, "nodes per run")
	runs := flag.Int("runs", 4, "timed runs per method (after one warm-up run each); each round starts with the next method")
	cpus := flag.Float64("cpus", 0.05, "template cpus of both groups (Kubernetes: request = limit; the test node has 2 CPUs)")
	memMB := flag.Int64("memory-mb", 256, "template memory_mb of both groups")
	settle := flag.Duration("settle", 5*time.Second, "pause after cleaning up, before each run")
	jsonOut := flag.String("json", "", "write the runs and the summary as JSON here")
	logs := flag.String("logs", "", "copy the hook log here at the end")
	verbose := flag.Bool("v", false, "cluster progress lines on stderr")
	backend := flag.String("backend", "rest", "the hook's Slurm backend: rest or scontrol (through podman exec)")
	flag.Parse()
	if *backend != "rest" && *backend != "scontrol" {
		fail(fmt.Errorf("-backend %q: want rest or scontrol", *backend))
	}
	if *binDir == "" {
		fail(errors.New("-bin (or SE_BIN_DIR) is required"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logw := io.Discard
	if *verbose {
		logw = os.Stderr
	}
	b := &bench{bin: *binDir, bin2: *bin2, bareapi: *bareapi, name: *name, n: *nodes, cpus: *cpus, memMB: *memMB, settle: *settle, logw: logw, backend: *backend}
	if err := b.run(ctx, *runs, *jsonOut, *logs); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kubebench:", err)
	os.Exit(1)
}

type bench struct {
	bin, bin2, bareapi string
	name               string
	backend            string
	n                  int
	cpus               float64
	memMB              int64
	settle             time.Duration
	logw               io.Writer

	hc     *harness.Cluster
	kc     *kube.Cluster
	cs     *kubernetes.Clientset
	dir    string // config, state dir, hook log
	config string
	specs  []*corev1.Pod // bare-kube's pods: what the hook created
}

func (b *bench) run(ctx context.Context, runs int, jsonOut, logs string) (err error) {
	var names []string
	for _, p := range []string{"k", "p"} {
		for i := 1; i <= b.n; i++ {
			names = append(names, fmt.Sprintf("%s%d", p, i))
		}
	}
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	b.hc, err = harness.Start(sctx, harness.Options{Name: b.name, NodeNames: names, Log: b.logw,
		SlurmConf: strings.Join([]string{"ResumeProgram=/bin/true", "SuspendProgram=/bin/true", "ResumeTimeout=300", "SuspendTime=3600",
			fmt.Sprintf("NodeName=k[1-%d],p[1-%d] CPUs=1 RealMemory=100 State=CLOUD", b.n, b.n),
			fmt.Sprintf("PartitionName=k Nodes=k[1-%d] MaxTime=INFINITE State=UP", b.n),
			fmt.Sprintf("PartitionName=p Nodes=p[1-%d] MaxTime=INFINITE State=UP", b.n)}, "\n")})
	if err != nil {
		return fmt.Errorf("start head %s: %w", b.name, err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "kubebench: diagnostics:\n%s\n", b.hc.Diagnostics(sctx))
		}
		if serr := b.hc.Stop(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop head: %w", serr))
		}
	}()
	b.kc, err = kube.Start(sctx, kube.Options{Name: b.name + "k", PodRoutes: []string{b.hc.Subnet}, Log: b.logw})
	if err != nil {
		return fmt.Errorf("start kubernetes %sk: %w", b.name, err)
	}
	defer func() {
		if serr := b.kc.Stop(context.WithoutCancel(ctx)); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop kubernetes: %w", serr))
		}
	}()
	if err := b.kc.ImportImage(sctx, b.hc.Image); err != nil {
		return err
	}
	if err := b.prepare(sctx); err != nil {
		return err
	}
	defer func() {
		if logs != "" {
			if lerr := copyFile(filepath.Join(b.dir, "hook.log"), logs); lerr != nil {
				fmt.Fprintf(os.Stderr, "kubebench: copy hook log: %v\n", lerr)
			}
		}
		os.RemoveAll(b.dir)
	}()
	fmt.Fprintf(os.Stderr, "kubebench: head %s (%s) and Kubernetes %s (pods %s) up in %s\n",
		b.hc.Name, b.hc.Subnet, b.kc.Name, b.kc.Subnet, time.Since(t0).Round(time.Second))

	methods := []string{"hook-kube", "bare-kube", "hook-podman"}
	if b.bin2 != "" {
		methods = append(methods, "hook-kube-bin2")
	}
	if b.bareapi != "" {
		methods = append(methods, "bare-podman")
	}
	var all []Run
	for rep := 0; rep <= runs; rep++ { // rep 0: warm-up (and bare-kube's specs)
		// Each timed round starts with another method, so that no method
		// always follows the same one (whose cleanup may still load the
		// machine).
		order := methods
		if rep > 0 {
			k := (rep - 1) % len(methods)
			order = append(slices.Clone(methods[k:]), methods[:k]...)
		}
		for _, m := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := b.once(ctx, m)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", m, rep, err)
			}
			r.Rep = rep
			all = append(all, r)
			fmt.Fprintf(os.Stderr, "kubebench: %-11s run %d: %7.0f ms (created %5.0f-%5.0f, scheduled %5.0f, running %5.0f-%5.0f ms; load %s)\n",
				m, rep, r.WallMS, r.FirstCreatedMS, r.CreatedMS, r.ScheduledMS, r.FirstRunningMS, r.RunningMS, r.Load1)
		}
	}
	if err := b.cleanup(ctx); err != nil {
		return err
	}
	sums := summarize(all, methods)
	printTable(os.Stdout, sums, b.n)
	if jsonOut != "" {
		out, _ := json.MarshalIndent(map[string]any{"nodes": b.n, "runs": all, "summary": sums}, "", "  ")
		if err := os.WriteFile(jsonOut, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// prepare writes the hook's config and makes the Kubernetes group's
// namespace and munge key Secret (as the cluster admin).
func (b *bench) prepare(ctx context.Context) error {
	rc, err := clientcmd.BuildConfigFromFlags("", b.kc.Kubeconfig)
	if err != nil {
		return err
	}
	// The floor is not throttled by the client (client-go's default is 5/s,
	// burst 10); the runtime's own client allows 50/s, burst 100.
	rc.QPS, rc.Burst = 1000, 1000
	if b.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", namespace, err)
	}
	key, err := os.ReadFile(b.hc.MungeKey)
	if err != nil {
		return err
	}
	if _, err := b.cs.CoreV1().Secrets(namespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: mungeSecret},
		Data: map[string][]byte{"munge.key": key}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("secret %s/%s: %w", namespace, mungeSecret, err)
	}
	for { // pods need the namespace's default service account
		if _, err := b.cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("namespace %s: no default service account: %w", namespace, err)
		}
	}
	if b.dir, err = os.MkdirTemp("", "se-kubebench-"); err != nil {
		return err
	}
	bin, err := filepath.Abs(b.bin)
	if err != nil {
		return err
	}
	tok, err := b.hc.Token(ctx, "slurm", 2*time.Hour)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(b.dir, "slurm.jwt")
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		return err
	}
	b.config = filepath.Join(b.dir, "config.yaml")
	cfg := fmt.Sprintf(`# slurm-elastic config of kubebench (tests/bench/cmd/kubebench)
cluster: %[1]s
slurm:
  backend: %[14]s
  scontrol: %[2]s
  rest_url: %[15]s
  token_file: %[16]s
  user: slurm
  timeout: 10s
  conf_server: "%[3]s"
podman:
  timeout: 20s
  munge_key: %[4]s
  hosts: [{name: local, uri: "unix://%[5]s"}]
kubernetes:
  kubeconfig: %[6]s
  image_pull_policy: Never
log:
  file: %[7]s/hook.log
  level: info
state_dir: %[7]s/state
power_save:
  bin_dir: %[8]s
  resume_timeout: 300s
groups:
  - name: kube
    nodes: "k[1-%[9]d]"
    runtime: kubernetes
    cpus: 1
    real_memory_mb: 100
    template: {image: "%[10]s", cpus: %[11]g, memory_mb: %[12]d}
  - name: pod
    nodes: "p[1-%[9]d]"
    cpus: 1
    real_memory_mb: 100
    template: {image: "%[10]s", network: %[13]s, cpus: %[11]g, memory_mb: %[12]d, dns: [none]}
`, b.hc.Name, b.hc.ScontrolWrapper(), b.hc.HeadIP, b.hc.MungeKey, b.hc.PodmanSocket, b.kc.Kubeconfig, b.dir, bin,
		b.n, b.hc.Image, b.cpus, b.memMB, b.hc.Network, b.backend, b.hc.RESTURL, tokenFile)
	if err := os.MkdirAll(filepath.Join(b.dir, "state"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(b.config, []byte(cfg), 0o640); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "slurm-elastic"), "--config", b.config, "conf", "check", "--connect").CombinedOutput()
	if err != nil {
		return fmt.Errorf("slurm-elastic conf check --connect: %w: %s", err, out)
	}
	return nil
}

// once cleans up, settles and times one run of method m.
func (b *bench) once(ctx context.Context, m string) (Run, error) {
	if err := b.cleanup(ctx); err != nil {
		return Run{}, err
	}
	if err := sleep(ctx, b.settle); err != nil {
		return Run{}, err
	}
	r := Run{Method: m, Load1: load1()}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var obs *observer
	if strings.Contains(m, "-kube") {
		var err error
		if obs, err = observe(rctx, b.cs, b.n); err != nil {
			return r, err
		}
		defer obs.stop()
	}
	t0 := time.Now()
	var err error
	switch m {
	case "hook-kube":
		err = b.hook(rctx, b.bin, "k")
	case "hook-kube-bin2":
		err = b.hook(rctx, b.bin2, "k")
	case "hook-podman":
		err = b.hook(rctx, b.bin, "p")
	case "bare-kube":
		err = b.bareKube(rctx, obs)
	case "bare-podman":
		err = b.barePodman(rctx)
	default:
		err = fmt.Errorf("unknown method %q", m)
	}
	r.WallMS = ms(time.Since(t0))
	if err != nil {
		return r, err
	}
	if obs != nil {
		first, last, err := obs.wait(rctx)
		if err != nil {
			return r, err
		}
		r.FirstCreatedMS, r.CreatedMS, r.ScheduledMS = ms(first[0].Sub(t0)), ms(last[0].Sub(t0)), ms(last[1].Sub(t0))
		r.FirstRunningMS, r.RunningMS = ms(first[2].Sub(t0)), ms(last[2].Sub(t0))
		if m == "hook-kube" && b.specs == nil {
			if err := b.captureSpecs(rctx); err != nil {
				return r, err
			}
		}
	}
	return r, b.check(rctx, m)
}

// hook runs the resume hook for prefix[1-n] as slurmctld would: the
// hostlist its one argument, the config from SLURM_ELASTIC_CONFIG.
func (b *bench) hook(ctx context.Context, bin, prefix string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "slurm-elastic-resume"), fmt.Sprintf("%s[1-%d]", prefix, b.n))
	cmd.Env = []string{"SLURM_ELASTIC_CONFIG=" + b.config, "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("slurm-elastic-resume %s[1-%d]: %w: %s", prefix, b.n, err, out)
	}
	return nil
}

// captureSpecs keeps the pods the hook created as bare-kube's: metadata
// (name, labels) and spec, without the node binding the scheduler made.
func (b *bench) captureSpecs(ctx context.Context) error {
	l, err := b.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelCluster + "=" + b.hc.Name})
	if err != nil {
		return err
	}
	for i := range l.Items {
		p := &l.Items[i]
		s := p.Spec.DeepCopy()
		s.NodeName = ""
		b.specs = append(b.specs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: namespace,
			Labels: p.Labels, Annotations: p.Annotations}, Spec: *s})
	}
	if len(b.specs) != b.n {
		return fmt.Errorf("hook-kube left %d pods, want %d", len(b.specs), b.n)
	}
	return nil
}

// bareKube creates the captured pods all at once and waits, on the side
// watch, until all run with an IP.
func (b *bench) bareKube(ctx context.Context, obs *observer) error {
	if b.specs == nil {
		return errors.New("no pod specs yet (hook-kube runs first)")
	}
	errs := make([]error, len(b.specs))
	var wg sync.WaitGroup
	for i, p := range b.specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.cs.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	_, _, err := obs.wait(ctx)
	return err
}

// barePodman runs bareapi for p[1-n] with the Podman group's container spec.
func (b *bench) barePodman(ctx context.Context) error {
	args := []string{"-url", "unix://" + b.hc.PodmanSocket, "-cluster", b.hc.Name, "-group", "pod", "-network", b.hc.Network,
		"-image", b.hc.Image, "-cpus", fmt.Sprint(b.cpus), "-memory-mb", fmt.Sprint(b.memMB),
		"-env", runtime.EnvConfServer + "=" + b.hc.HeadIP, "-mount", b.hc.MungeKey + ":" + runtime.MungeKeyPath + ":ro"}
	for i := 1; i <= b.n; i++ {
		args = append(args, fmt.Sprintf("p%d", i))
	}
	out, err := exec.CommandContext(ctx, b.bareapi, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bareapi: %w: %s", err, out)
	}
	return nil
}

// check: after a kube method n pods run with an IP; after a Podman one n
// containers run.
func (b *bench) check(ctx context.Context, m string) error {
	if strings.Contains(m, "-kube") {
		l, err := b.cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: runtime.LabelCluster + "=" + b.hc.Name})
		if err != nil {
			return err
		}
		up := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				up++
			}
		}
		if up != b.n {
			return fmt.Errorf("check: %d of %d pods running with an IP", up, b.n)
		}
		return nil
	}
	ids, err := b.containers(ctx, "--filter", "status=running")
	if err != nil {
		return err
	}
	if len(ids) != b.n {
		return fmt.Errorf("check: %d of %d containers running", len(ids), b.n)
	}
	return nil
}

// containers lists this cluster's node containers on the head's Podman.
func (b *bench) containers(ctx context.Context, filter ...string) ([]string, error) {
	out, err := b.hc.Podman(ctx, append([]string{"ps", "-aq", "--filter", "label=" + runtime.LabelCluster + "=" + b.hc.Name}, filter...)...)
	if err != nil {
		return nil, fmt.Errorf("podman ps: %w: %s", err, out)
	}
	return strings.Fields(out), nil
}

// cleanup removes every node pod and container and waits until they are
// gone: pods from the API and their containerd tasks, containers from
// Podman.
func (b *bench) cleanup(ctx context.Context) error {
	sel := metav1.ListOptions{LabelSelector: runtime.LabelCluster + "=" + b.hc.Name}
	grace := int64(1)
	if err := b.cs.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, sel); err != nil {
		return fmt.Errorf("cleanup: delete pods: %w", err)
	}
	if ids, err := b.containers(ctx); err != nil {
		return err
	} else if len(ids) > 0 {
		if out, err := b.hc.Podman(ctx, append([]string{"rm", "-f", "-t", "0"}, ids...)...); err != nil {
			return fmt.Errorf("cleanup: podman rm: %w: %s", err, out)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		l, err := b.cs.CoreV1().Pods(namespace).List(cctx, sel)
		tasks, terr := exec.CommandContext(cctx, "ctr", "--address", b.kc.Socket, "-n", "k8s.io", "tasks", "ls", "-q").Output()
		ids, cerr := b.containers(cctx)
		if err == nil && terr == nil && cerr == nil && len(l.Items) == 0 && len(bytes.Fields(tasks)) == 0 && len(ids) == 0 {
			return nil
		}
		if serr := sleep(cctx, 250*time.Millisecond); serr != nil {
			n := -1
			if l != nil {
				n = len(l.Items)
			}
			return fmt.Errorf("cleanup: not gone in 3 minutes: %d pods (%v), containerd tasks %q (%v), containers %v (%v)",
				n, err, tasks, terr, ids, cerr)
		}
	}
}

// observer watches the node pods and records when each was first seen,
// bound to a node, and running with an IP.
type observer struct {
	n      int
	mu     sync.Mutex
	phases [3]map[string]time.Time // created, scheduled, running
	all    chan struct{}           // closed when n pods run
	w      watch.Interface
}

func observe(ctx context.Context, cs *kubernetes.Clientset, n int) (*observer, error) {
	l, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	if len(l.Items) != 0 {
		return nil, fmt.Errorf("observe: %d pods left from before", len(l.Items))
	}
	w, err := cs.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		return nil, err
	}
	o := &observer{n: n, all: make(chan struct{}), w: w}
	for i := range o.phases {
		o.phases[i] = map[string]time.Time{}
	}
	go func() {
		for ev := range w.ResultChan() {
			now := time.Now()
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			o.mu.Lock()
			mark := func(i int) {
				if _, ok := o.phases[i][p.Name]; !ok {
					o.phases[i][p.Name] = now
				}
			}
			mark(0)
			if p.Spec.NodeName != "" {
				mark(1)
			}
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				mark(2)
				if len(o.phases[2]) == o.n {
					select {
					case <-o.all:
					default:
						close(o.all)
					}
				}
			}
			o.mu.Unlock()
		}
	}()
	return o, nil
}

func (o *observer) stop() { o.w.Stop() }

// wait blocks until n pods ran with an IP (or ctx ends) and returns the
// earliest and the latest time of each phase.
func (o *observer) wait(ctx context.Context) (first, last [3]time.Time, err error) {
	select {
	case <-o.all:
	case <-ctx.Done():
		return first, last, fmt.Errorf("side watch: %d of %d pods seen running: %w", o.count(), o.n, ctx.Err())
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, m := range o.phases {
		for _, t := range m {
			if first[i].IsZero() || t.Before(first[i]) {
				first[i] = t
			}
			if t.After(last[i]) {
				last[i] = t
			}
		}
	}
	return first, last, nil
}

func (o *observer) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.phases[2])
}

// Summary is one method's timed runs: median (p50) and max.
type Summary struct {
	Method       string  `json:"method"`
	Runs         int     `json:"runs"`
	WallP50MS    float64 `json:"wall_p50_ms"`
	WallMaxMS    float64 `json:"wall_max_ms"`
	FirstCrP50MS float64 `json:"first_created_p50_ms,omitempty"`
	CreatedP50MS float64 `json:"last_created_p50_ms,omitempty"`
	SchedP50MS   float64 `json:"last_scheduled_p50_ms,omitempty"`
	FirstRnP50MS float64 `json:"first_running_p50_ms,omitempty"`
	RunP50MS     float64 `json:"last_running_p50_ms,omitempty"`
}

func summarize(all []Run, methods []string) []Summary {
	var out []Summary
	for _, m := range methods {
		var wall, fc, cr, sc, fr, rn []float64
		for _, r := range all {
			if r.Method == m && r.Rep > 0 {
				wall, cr, sc, rn = append(wall, r.WallMS), append(cr, r.CreatedMS), append(sc, r.ScheduledMS), append(rn, r.RunningMS)
				fc, fr = append(fc, r.FirstCreatedMS), append(fr, r.FirstRunningMS)
			}
		}
		if len(wall) == 0 {
			continue
		}
		out = append(out, Summary{Method: m, Runs: len(wall), WallP50MS: median(wall), WallMaxMS: slices.Max(wall),
			FirstCrP50MS: median(fc), CreatedP50MS: median(cr), SchedP50MS: median(sc), FirstRnP50MS: median(fr), RunP50MS: median(rn)})
	}
	return out
}

func printTable(w io.Writer, sums []Summary, n int) {
	fmt.Fprintf(w, "\n%d nodes, p50 and max of the timed runs (ms); side watch (kube), p50 (ms): pods created first-last, last scheduled, running first-last\n", n)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\truns\twall p50\twall max\tcreated\tscheduled\trunning\t")
	for _, s := range sums {
		if s.RunP50MS == 0 {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t\t\t\t\n", s.Method, s.Runs, s.WallP50MS, s.WallMaxMS)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f-%.0f\t%.0f\t%.0f-%.0f\t\n", s.Method, s.Runs, s.WallP50MS, s.WallMaxMS,
			s.FirstCrP50MS, s.CreatedP50MS, s.SchedP50MS, s.FirstRnP50MS, s.RunP50MS)
	}
	tw.Flush()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func load1() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
