// Command coldbench is benchmark 5 of docs/benchmarks.md: how long a job on
// powered-down nodes waits before it runs, with slurm-elastic-prolog as
// PrologSlurmctld and without any, on the real elastic cluster (Slurm 24.11
// head + private Podman service, from tests/elastic) with 32 cloud nodes.
//
// Each round turns the prolog's wait on or off (power_save.prolog in head's
// config.yaml; see setProlog), powers the nodes down (power_down_force,
// then waits until they are idle~ with no container left), waits 1-6 s at
// random, notes the time, and starts the job on cloud[1-N]:
//
//   - batch:  sbatch --wrap 'date +%s.%N > /shared/...' : submit -> the
//     batch script runs (the file's time);
//   - srun:   srun bash -c 'date +%s.%N' : srun started -> the task runs;
//   - salloc: salloc date +%s.%N : salloc started -> the allocation is
//     ready and salloc runs its command.
//
// Host and containers share one clock. Runs are interleaved (with, without,
// with, ...) so load from other work hits both alike. A job that does not
// run within 3 minutes is breakage (exit 1); a missed target is not. The
// cluster is stopped at the end, also on failure or signal.
//
// With -images it measures instead a one-node batch job on the img group
// (tests/elastic Settings.Images) with the prolog on, interleaving a job
// without -C (the default image) and one with -C marked (the image
// elastic.MarkedImage, built here from the cluster's image plus one file):
// a job in a non-default image should start no later.
//
// Usage: coldbench [-sizes 1,2,8,32] [-runs 5] [-kinds batch] [-isizes 2]
// [-images] [-name se-cold] [-json FILE]; SE_BIN_DIR names the built binaries.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// Run is one timed cold start.
type Run struct {
	Kind   string  `json:"kind"`
	Nodes  int     `json:"nodes"`
	Prolog bool    `json:"prolog"`
	Rep    int     `json:"rep"`
	Image  string  `json:"image,omitempty"` // -images: "default" or "marked"
	WaitMS float64 `json:"wait_ms"`
}

func main() {
	sizes := flag.String("sizes", "1,2,8,32", "batch job sizes (nodes)")
	isizes := flag.String("isizes", "2", "srun and salloc sizes (nodes)")
	kinds := flag.String("kinds", "batch,srun,salloc", "job kinds")
	runs := flag.Int("runs", 5, "rounds per kind, size and mode")
	jsonOut := flag.String("json", "", "write all runs as JSON here")
	images := flag.Bool("images", false, "time a cold batch job in the img group's default and marked images instead")
	name := flag.String("name", "se-cold", "the cluster's name")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *name, *images, ints(*sizes), ints(*isizes), strings.Split(*kinds, ","), *runs, *jsonOut)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "coldbench: BROKEN: %v\n", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

type bench struct {
	c      *elastic.Cluster
	prolog bool   // what head's slurm.conf says now
	part   string // the partition of the timed nodes: cloud, or img with -images
}

func run(ctx context.Context, name string, images bool, sizes, isizes []int, kinds []string, runs int, jsonOut string) (err error) {
	bin := os.Getenv("SE_BIN_DIR")
	if bin == "" {
		return errors.New("SE_BIN_DIR is not set: run `make build` and point it at bin/")
	}
	maxN := slices.Max(append(slices.Clone(sizes), isizes...))
	s := elastic.Settings{Name: name, Backend: "rest", CloudNodes: max(maxN, 4), Concurrency: 32, SuspendTime: time.Hour, Images: images}
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	c, err := elastic.Start(sctx, s, bin, os.Stderr)
	cancel()
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	fmt.Fprintf(os.Stderr, "coldbench: cluster up in %s\n", time.Since(t0).Round(time.Second))
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "coldbench: diagnostics:\n%s\n", c.Diagnostics(sctx))
		}
		if serr := c.Stop(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop cluster: %w", serr))
		}
	}()
	b := &bench{c: c, prolog: true, part: "cloud"}
	var all []Run
	if images {
		b.part = "img"
		if all, err = b.imageRounds(ctx, runs); err != nil {
			return err
		}
		kinds = nil
	}
	for _, kind := range kinds {
		ns := sizes
		if kind != "batch" {
			ns = isizes
		}
		for _, n := range ns {
			for rep := 1; rep <= runs; rep++ {
				for _, on := range []bool{true, false} {
					if err := ctx.Err(); err != nil {
						return err
					}
					w, err := b.once(ctx, kind, n, on)
					if err != nil {
						return fmt.Errorf("%s N=%d prolog=%v round %d: %w", kind, n, on, rep, err)
					}
					r := Run{Kind: kind, Nodes: n, Prolog: on, Rep: rep, WaitMS: float64(w) / 1e6}
					fmt.Fprintf(os.Stderr, "coldbench: %-6s N=%-2d prolog=%-5v round %d: %6.2f s (load %s)\n", kind, n, on, rep, r.WaitMS/1000, load())
					all = append(all, r)
				}
			}
		}
	}
	if jsonOut != "" {
		data, _ := json.MarshalIndent(all, "", "  ")
		if err := os.WriteFile(jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	table(all)
	return nil
}

// imageRounds builds elastic.MarkedImage and times runs rounds of a cold
// one-node batch job on img1, interleaved: without -C (the default image)
// and with -C marked. The prolog stays on.
func (b *bench) imageRounds(ctx context.Context, runs int) ([]Run, error) {
	dir, err := os.MkdirTemp("", "coldbench-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cf := fmt.Sprintf("FROM %s\nCOPY marker /etc/slurm-elastic-marker\n", b.c.Image)
	if err := errors.Join(os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(cf), 0o644),
		os.WriteFile(filepath.Join(dir, "marker"), []byte("marked image\n"), 0o644)); err != nil {
		return nil, err
	}
	tag := elastic.MarkedImage(b.c.Name)
	if out, err := b.c.Podman(ctx, "build", "--pull=never", "--network=none", "-t", tag, "-f", filepath.Join(dir, "Containerfile"), dir); err != nil {
		return nil, fmt.Errorf("build %s: %w\n%s", tag, err, out)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if out, err := b.c.Podman(rctx, "rmi", "-f", tag); err != nil {
			fmt.Fprintf(os.Stderr, "coldbench: podman rmi %s: %v\n%s", tag, err, out)
		}
	}()
	var all []Run
	for rep := 1; rep <= runs; rep++ {
		for _, img := range []string{"default", "marked"} {
			if err := ctx.Err(); err != nil {
				return all, err
			}
			var extra []string
			if img != "default" {
				extra = []string{"-C", img}
			}
			w, err := b.once(ctx, "batch", 1, true, extra...)
			if err != nil {
				return all, fmt.Errorf("image %s round %d: %w", img, rep, err)
			}
			r := Run{Kind: "batch", Nodes: 1, Prolog: true, Rep: rep, Image: img, WaitMS: float64(w) / 1e6}
			fmt.Fprintf(os.Stderr, "coldbench: image %-7s round %d: %6.2f s (load %s)\n", img, rep, r.WaitMS/1000, load())
			all = append(all, r)
		}
	}
	return all, nil
}

// once powers the partition's nodes [1-n] down, sets the prolog on or off,
// runs one cold job of kind (with the extra sbatch/srun/salloc options)
// and returns how long it waited before it ran.
func (b *bench) once(ctx context.Context, kind string, n int, prolog bool, extra ...string) (time.Duration, error) {
	nodes := fmt.Sprintf("%s[1-%d]", b.part, n)
	if n == 1 {
		nodes = b.part + "1"
	}
	opts := append([]string{"-p", b.part, "-N", strconv.Itoa(n), "-w", nodes}, extra...)
	if err := b.setProlog(ctx, prolog); err != nil {
		return 0, err
	}
	if err := b.powerDown(ctx); err != nil {
		return 0, err
	}
	// A random phase against slurmctld's 30 s periodic pass, as a user's
	// submission has.
	time.Sleep(time.Second + rand.N(5*time.Second))
	jctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	var out string
	var err error
	switch kind {
	case "batch":
		var id string
		id, err = b.c.Exec(jctx, append(append([]string{"sbatch", "--parsable"}, opts...), "-o", "/dev/null",
			"--wrap", "date +%s.%N > /shared/cold-$SLURM_JOB_ID.tmp && mv /shared/cold-$SLURM_JOB_ID.tmp /shared/cold-$SLURM_JOB_ID")...)
		if err != nil {
			return 0, fmt.Errorf("sbatch: %w", err)
		}
		id, _, _ = strings.Cut(strings.TrimSpace(id), ";")
		file := filepath.Join(b.c.SharedDir, "cold-"+id)
		for {
			data, rerr := os.ReadFile(file)
			if rerr == nil {
				out = string(data)
				os.Remove(file)
				break
			}
			select {
			case <-jctx.Done():
				return 0, fmt.Errorf("job %s did not run: %w", id, jctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	case "srun":
		out, err = b.c.Exec(jctx, append(append([]string{"srun"}, opts...), "bash", "-c", "date +%s.%N")...)
	case "salloc":
		out, err = b.c.Exec(jctx, append(append([]string{"salloc"}, opts...), "date", "+%s.%N")...)
	default:
		return 0, fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", kind, err, out)
	}
	first := time.Time{}
	for _, f := range strings.Fields(out) {
		v, perr := strconv.ParseFloat(f, 64)
		if perr != nil {
			continue
		}
		at := time.Unix(0, int64(v*1e9))
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return 0, fmt.Errorf("%s printed no time: %q", kind, out)
	}
	return first.Sub(start), nil
}

// powerDown forces every node of the partition that is not powered down down and
// waits until all are idle~ with no node container left.
func (b *bench) powerDown(ctx context.Context) error {
	out, err := b.c.Exec(ctx, "sinfo", "-h", "-N", "-p", b.part, "-o", "%N %t")
	if err != nil {
		return fmt.Errorf("sinfo: %w", err)
	}
	var up []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && !strings.HasSuffix(f[1], "~") && !strings.HasSuffix(f[1], "%") {
			up = append(up, f[0])
		}
	}
	if len(up) > 0 {
		if _, err := b.c.Exec(ctx, "scontrol", "update", "nodename="+strings.Join(up, ","), "state=power_down_force"); err != nil {
			return fmt.Errorf("power down %v: %w", up, err)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := b.c.Exec(ctx, "sinfo", "-h", "-N", "-p", b.part, "-o", "%t")
		// Node containers carry a node label; head does not.
		ctrs, perr := b.c.Podman(ctx, "ps", "-a", "--filter", "label=slurm-elastic.cluster="+b.c.Name,
			"--format", `{{index .Labels "slurm-elastic.node"}}`)
		if err == nil && perr == nil && strings.TrimSpace(ctrs) == "" {
			done := true
			for _, st := range strings.Fields(out) {
				done = done && st == "idle~"
			}
			if done {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes not powered down after 3 minutes: %s containers %q", out, ctrs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// setProlog turns the prolog's wait on or off with power_save.prolog in
// head's config.yaml: PrologSlurmctld stays in slurm.conf (no reconfigure,
// whose restart of slurmctld would move its 30 s periodic pass), and with
// power_save.prolog: false the prolog returns at once, as if there were
// none: the job waits for that pass.
func (b *bench) setProlog(ctx context.Context, on bool) error {
	if b.prolog == on {
		return nil
	}
	expr := `/^power_save:/a\  prolog: false`
	if on {
		expr = `/^  prolog: false$/d`
	}
	if _, err := b.c.Exec(ctx, "sed", "-i", expr, harness.ConfigInHead); err != nil {
		return fmt.Errorf("edit %s: %w", harness.ConfigInHead, err)
	}
	out, err := b.c.Exec(ctx, "grep", "-c", "^  prolog: false$", harness.ConfigInHead)
	if got := strings.TrimSpace(out) == "1"; got == on || (err != nil && !on) {
		return fmt.Errorf("power_save.prolog in %s is not %v after the edit: %q %v", harness.ConfigInHead, on, out, err)
	}
	b.prolog = on
	return nil
}

func load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return "?"
	}
	return f[0]
}

// table prints p50 and p95 (nearest rank) per kind, size and mode.
func table(all []Run) {
	type key struct {
		kind   string
		n      int
		prolog bool
		image  string
	}
	groups := map[key][]float64{}
	var keys []key
	for _, r := range all {
		k := key{r.Kind, r.Nodes, r.Prolog, r.Image}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r.WaitMS/1000)
	}
	fmt.Println("| kind | nodes | PrologSlurmctld | runs | p50 | p95 | min | max | all (s) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, k := range keys {
		v := slices.Sorted(slices.Values(groups[k]))
		var all []string
		for _, x := range groups[k] {
			all = append(all, fmt.Sprintf("%.1f", x))
		}
		mode := "none"
		if k.prolog {
			mode = "slurm-elastic-prolog"
		}
		if k.image != "" {
			mode += ", image " + k.image
		}
		fmt.Printf("| %s | %d | %s | %d | %.1f s | %.1f s | %.1f s | %.1f s | %s |\n", k.kind, k.n, mode, len(v),
			rank(v, 0.5), rank(v, 0.95), v[0], v[len(v)-1], strings.Join(all, ", "))
	}
}

func rank(sorted []float64, p float64) float64 {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
