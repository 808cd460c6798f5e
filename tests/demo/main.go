// Command demo is `make demo`: it starts a local elastic Slurm 24.11 cluster
// in Podman whose power-save hooks are slurm-elastic's binaries, submits a
// two-node job, and shows the nodes powering up, the job's output and the
// nodes powering down. `-down` (make demo-down) removes everything it made.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/elastic"
	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

const name = "se-demo"

// deb is the -deb flag: the head-node package to install in head.
var deb string

func main() {
	down := flag.Bool("down", false, "remove the demo cluster and everything it created")
	flag.StringVar(&deb, "deb", "", "install slurm-elastic in the head from this .deb (make deb) instead of mounting $SE_BIN_DIR")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *down {
		err = harness.Remove(ctx, name, os.Stdout)
		if err == nil {
			fmt.Println("demo cluster removed")
		}
	} else {
		err = demo(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func demo(ctx context.Context) error {
	binDir := os.Getenv("SE_BIN_DIR")
	if binDir == "" {
		return fmt.Errorf("SE_BIN_DIR is not set: run `make demo`")
	}
	s := elastic.Settings{Name: name, SuspendTime: 20 * time.Second}
	if deb != "" {
		s.Debs = []string{deb}
	}
	step("Starting a Slurm head (slurmctld + slurmrestd; 24.11, or the release in $SE_SLURM) in Podman; the first run builds the image (about a minute)")
	cl, err := elastic.Start(ctx, s, binDir, os.Stdout)
	if err != nil {
		return err
	}
	exec := func(args ...string) string {
		out, err := cl.Exec(ctx, args...)
		if err != nil {
			return "error: " + err.Error()
		}
		return strings.TrimRight(out, "\n")
	}
	if deb != "" {
		step("slurm-elastic was installed in the head from " + filepath.Base(deb) + " (dpkg -i), as on a real head node")
		fmt.Println(exec("dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n", "slurm-elastic"))
		fmt.Println(exec("ls", "-l", "/usr/libexec/slurm-elastic", "/usr/bin/slurm-elastic"))
	}
	step("slurm.conf power-save lines (from `slurm-elastic conf slurm`)")
	fmt.Println(exec("grep", "-E", "^(Resume|Suspend)(Program|FailProgram|Timeout|Time)=|^NodeName=cloud", "/etc/slurm/slurm.conf"))
	step("The cloud nodes are powered down (~): no containers run")
	fmt.Println(exec("sinfo", "-p", "cloud"))

	step("Submitting: sbatch -p cloud -N2 --wrap 'srun hostname'")
	id := strings.TrimSpace(exec("sbatch", "--parsable", "-p", "cloud", "-N2", "-o", "/shared/demo-%j.out", "--wrap", "srun hostname; srun uname -r"))
	fmt.Println("job", id)

	step("Watching the nodes power up (#), run the job, and power down (%) after SuspendTime=20s")
	last := ""
	deadline := time.Now().Add(5 * time.Minute)
	jobDone := false
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		nodes := exec("sinfo", "-h", "-p", "cloud", "-o", "%T %N")
		ctrs, _ := cl.Podman(ctx, "ps", "--filter", "label=slurm-elastic.cluster="+name, "--format", "{{.Names}}")
		job := exec("squeue", "-h", "-j", id, "-o", "%T")
		line := fmt.Sprintf("nodes: %-40s | job %s: %-10s | containers: %s", strings.ReplaceAll(nodes, "\n", "; "), id, orDone(job), orNone(ctrs))
		if line != last {
			fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if !jobDone && strings.TrimSpace(job) == "" {
			jobDone = true
			out, err := os.ReadFile(filepath.Join(cl.SharedDir, "demo-"+id+".out"))
			step("Job output")
			if err != nil {
				fmt.Println("error:", err)
			} else {
				fmt.Print(string(out))
			}
			step("Waiting for the nodes to power down again")
		}
		if jobDone && strings.TrimSpace(ctrs) == "" && strings.Contains(nodes, "idle~") && !strings.Contains(nodes, "%") {
			break
		}
		time.Sleep(time.Second)
	}
	step("Hook log (the last lines; Slurm discards hook output, so slurm-elastic logs JSON to its own file)")
	if b, err := os.ReadFile(filepath.Join(cl.LogDir, "slurm-elastic.log")); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		fmt.Println(strings.Join(lines[max(0, len(lines)-8):], "\n"))
	}
	step("Done. The cluster stays up for you to try; `make demo-down` removes it")
	fmt.Printf("  scontrol in the head:  %s show nodes\n", cl.ScontrolWrapper())
	fmt.Printf("  a shell in the head:   env %s podman exec -it %s bash\n", strings.Join(cl.Env, " "), cl.Head)
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func orNone(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return "none"
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func orDone(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return "done"
	}
	return s
}
