package kube

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slurm-elastic/slurm-elastic/tests/harness"
)

// Remove ends cluster name and removes everything it made, also after a crash: the
// daemons (by pid file and by any process naming the cluster's directories), the pods'
// processes (the kubelet's cgroup root), containerd's shims, mounts under the cluster's
// directories, the cgroups, the bridge, the guard route, the PodRoutes' iptables rules, the shim sockets, the pods' links
// in /var/log/containers, libcni's cached results of its network, and its directories.
// Nothing of another cluster is touched. Idempotent; it blocks for seconds.
func Remove(ctx context.Context, name string, logw io.Writer) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("kube: cluster name %q: want 1-20 of [a-z0-9-] starting with a letter", name)
	}
	if logw == nil {
		logw = io.Discard
	}
	state, run := paths(name)
	_, errS := os.Stat(state)
	_, errR := os.Stat(run)
	if errS != nil && errR != nil && len(cgroupProcs(cgroupName(name))) == 0 && !linkExists(bridgeName(name)) {
		return nil
	}
	fmt.Fprintf(logw, "kube: removing cluster %s\n", name)
	var errs []string
	// The kubelet first (it would restart pods), then the control plane.
	for _, d := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver"} {
		if pid, ok := harness.ReadPid(filepath.Join(run, d+".pid")); ok && ownedBy(pid, state, run) {
			stopPid(pid, 5*time.Second)
		}
	}
	// The pods' processes, then containerd's shims (they hold the pods' mounts), then
	// containerd and etcd, then anything else that names the cluster's directories.
	for range 20 {
		pids := cgroupProcs(cgroupName(name))
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	shimSockets := shimAddresses(run)
	sandboxes := sandboxIDs(state, run)
	created, _ := os.ReadFile(filepath.Join(run, "shared-created"))
	for range 20 {
		pids := clusterProcs(state, run)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pids := clusterProcs(state, run); len(pids) > 0 {
		errs = append(errs, fmt.Sprintf("processes %v survive SIGKILL", pids))
	}
	if err := unmountUnder(state, run); err != nil {
		errs = append(errs, err.Error())
	}
	if err := removeCgroups(cgroupName(name)); err != nil {
		errs = append(errs, err.Error())
	}
	if linkExists(bridgeName(name)) {
		if err := ipCmd(ctx, "link", "del", bridgeName(name)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if b, err := os.ReadFile(filepath.Join(run, "subnet")); err == nil {
		subnet := strings.TrimSpace(string(b))
		ks, _ := os.ReadFile(filepath.Join(run, keepSourceFile))
		for _, from := range strings.Fields(string(ks)) {
			if err := harness.DropKeepSource(ctx, from, subnet); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if hasGuardRoute(subnet) {
			if err := ipCmd(ctx, "route", "del", "unreachable", subnet, "metric", "4000"); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, s := range shimSockets {
		os.Remove(s)
	}
	for _, id := range sandboxes { // containerd's own loopback network, cached by libcni
		os.Remove(filepath.Join("/var/lib/cni/results", "cni-loopback-"+id+"-lo"))
	}
	if !otherKubelets(name) { // the socket and checkpoint of "the" kubelet
		os.Remove(filepath.Join(sharedKubeletDir, "device-plugins", "kubelet.sock"))
		os.Remove(filepath.Join(sharedKubeletDir, "device-plugins", "kubelet_internal_checkpoint"))
	}
	removeLinksInto("/var/log/containers", filepath.Join(state, "pod-logs")+"/")
	for _, f := range cniResults(name) {
		os.Remove(f)
	}
	// The shared directories this cluster created, when empty (deepest first).
	// Those another cluster still uses become that cluster's to remove.
	dirs := strings.Fields(string(created))
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) }) // children first
	var kept []string
	for _, d := range slices.Compact(dirs) {
		if slices.Contains(sharedDirs, d) {
			if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
				kept = append([]string{d}, kept...)
			}
		}
	}
	if len(kept) > 0 {
		handOver(name, kept, logw)
	}
	for _, d := range []string{state, run} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("kube: remove %s: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// Leftovers lists what of cluster c is still on the host: processes naming its
// directories or in its cgroups, mounts under its directories, cgroups, the bridge, the
// guard route, libcni results, /var/log/containers links, its directories. Empty after
// Stop. It does not block.
func (c *Cluster) Leftovers() []string {
	var out []string
	if pids := clusterProcs(c.StateDir, c.RunDir); len(pids) > 0 {
		out = append(out, fmt.Sprintf("processes %v", pids))
	}
	if pids := cgroupProcs(cgroupName(c.Name)); len(pids) > 0 {
		out = append(out, fmt.Sprintf("processes in cgroup /%s: %v", cgroupName(c.Name), pids))
	}
	if m := mountsUnder(c.StateDir, c.RunDir); len(m) > 0 {
		out = append(out, fmt.Sprintf("mounts %v", m))
	}
	for _, h := range cgroupMounts() {
		if _, err := os.Stat(filepath.Join(h, cgroupName(c.Name))); err == nil {
			out = append(out, "cgroup "+filepath.Join(h, cgroupName(c.Name)))
		}
	}
	if linkExists(c.Bridge) {
		out = append(out, "bridge "+c.Bridge)
	}
	if hasGuardRoute(c.Subnet) {
		out = append(out, "route unreachable "+c.Subnet)
	}
	for _, from := range c.PodRoutes {
		if harness.HasKeepSource(from, c.Subnet) {
			out = append(out, "iptables nat rule keeping the source of "+from+" -> "+c.Subnet)
		}
	}
	if m := cniResults(c.Name); len(m) > 0 {
		out = append(out, fmt.Sprintf("libcni results %v", m))
	}
	if l := linksInto("/var/log/containers", filepath.Join(c.StateDir, "pod-logs")+"/"); len(l) > 0 {
		out = append(out, fmt.Sprintf("links %v", l))
	}
	for _, d := range []string{c.StateDir, c.RunDir} {
		if _, err := os.Stat(d); err == nil {
			out = append(out, "directory "+d)
		}
	}
	return out
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// hasGuardRoute reports whether `unreachable SUBNET metric 4000` is in the main table.
func hasGuardRoute(subnet string) bool {
	if subnet == "" {
		return false
	}
	out, err := runOut("ip", "-4", "route", "show", "type", "unreachable", subnet)
	return err == nil && strings.Contains(out, subnet)
}

// ownedBy reports whether pid's command line names one of the directories (so a reused
// pid of another process is never signalled).
func ownedBy(pid int, dirs ...string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	cl := strings.ReplaceAll(string(b), "\x00", " ") + " "
	for _, d := range dirs {
		if strings.Contains(cl, d+"/") || strings.Contains(cl, d+" ") {
			return true
		}
	}
	return false
}

// stopPid sends SIGTERM, waits up to grace, then SIGKILL.
func stopPid(pid int, grace time.Duration) {
	syscall.Kill(pid, syscall.SIGTERM)
	for t := time.Now(); time.Since(t) < grace; time.Sleep(50 * time.Millisecond) {
		if !harness.ProcessAlive(pid) {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// clusterProcs lists live processes (not this one) whose command line names a directory.
func clusterProcs(dirs ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if harness.ProcessAlive(pid) && ownedBy(pid, dirs...) {
			out = append(out, pid)
		}
	}
	return out
}

// cgroupProcs lists the processes in /<root> and below, in any hierarchy.
func cgroupProcs(root string) []int {
	seen := map[int]bool{}
	var out []int
	for _, h := range cgroupMounts() {
		filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] && harness.ProcessAlive(pid) {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// removeCgroups removes /<root> and everything below it, deepest first, in every hierarchy.
func removeCgroups(root string) error {
	var errs []string
	for _, h := range cgroupMounts() {
		var dirs []string
		filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			var err error
			for range 20 { // a cgroup is busy for a moment after its last process died
				if err = syscall.Rmdir(d); err == nil || os.IsNotExist(err) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("rmdir %s: %v", d, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cgroups: %s", strings.Join(errs, "; "))
	}
	return nil
}

// mountsUnder lists this mount namespace's mount points under the directories, in
// mountinfo order.
func mountsUnder(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 5 {
			continue
		}
		mp := unescapeMount(fl[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				out = append(out, mp)
				break
			}
		}
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount under the directories, the last mounted first.
func unmountUnder(dirs ...string) error {
	for range 5 {
		m := mountsUnder(dirs...)
		if len(m) == 0 {
			return nil
		}
		for i := len(m) - 1; i >= 0; i-- {
			syscall.Unmount(m[i], syscall.MNT_DETACH)
		}
	}
	if m := mountsUnder(dirs...); len(m) > 0 {
		return fmt.Errorf("mounts left: %v", m)
	}
	return nil
}

// shimAddresses reads the shim sockets (/run/containerd/s/<hash>: containerd 1.6 keeps
// them outside its state dir) from the task bundles' address files.
func shimAddresses(run string) []string {
	files, _ := filepath.Glob(filepath.Join(run, "containerd", "io.containerd.runtime.v2.task", "*", "*", "address"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		a := strings.TrimPrefix(strings.TrimSpace(string(b)), "unix://")
		if strings.HasPrefix(a, "/run/containerd/s/") && !strings.Contains(a, "..") {
			out = append(out, a)
		}
	}
	return out
}

// linksInto lists the symbolic links in dir whose target starts with prefix.
func linksInto(dir, prefix string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if t, err := os.Readlink(p); err == nil && strings.HasPrefix(t, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func removeLinksInto(dir, prefix string) {
	for _, p := range linksInto(dir, prefix) {
		os.Remove(p)
	}
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}

// sharedKubeletDir is where the kubelet keeps its device-plugin socket whatever its
// --root-dir says.
const sharedKubeletDir = "/var/lib/kubelet"

// sharedDirs are the host paths containerd 1.6, the kubelet and libcni use whatever their
// configuration says (parents first). Start records which of them it created; Remove
// removes those when they are empty.
var sharedDirs = []string{"/run/containerd", "/run/containerd/s", "/run/containerd/fifo",
	"/run/containerd/runc", "/var/lib/cni", "/var/lib/cni/results", "/var/log/containers",
	"/var/log/pods", sharedKubeletDir, sharedKubeletDir + "/device-plugins"}

// recordSharedDirs writes the shared directories that do not exist yet to
// RunDir/shared-created.
func recordSharedDirs(run string) error {
	var missing []string
	for _, d := range sharedDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			missing = append(missing, d)
		}
	}
	return os.WriteFile(filepath.Join(run, "shared-created"), []byte(strings.Join(missing, "\n")+"\n"), 0o644)
}

// sandboxIDs lists the pod sandboxes containerd knows of (its CRI store and task bundles).
func sandboxIDs(state, run string) []string {
	var ids []string
	for _, g := range []string{filepath.Join(state, "containerd", "io.containerd.grpc.v1.cri", "sandboxes", "*"),
		filepath.Join(run, "containerd", "io.containerd.runtime.v2.task", "k8s.io", "*")} {
		m, _ := filepath.Glob(g)
		for _, p := range m {
			if id := filepath.Base(p); len(id) == 64 && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// otherKubelets reports whether another cluster's kubelet runs (it shares the
// device-plugin socket path).
func otherKubelets(name string) bool {
	m, _ := filepath.Glob(filepath.Join(runRoot, "kube-*", "kubelet.pid"))
	for _, p := range m {
		if filepath.Base(filepath.Dir(p)) == "kube-"+name {
			continue
		}
		if pid, ok := harness.ReadPid(p); ok && harness.ProcessAlive(pid) {
			return true
		}
	}
	return false
}

// cniResultRE is libcni's cache file name: <network>-<container id>-<interface>.
var cniResultRE = regexp.MustCompile(`^(.+)-[0-9a-f]{64}-[A-Za-z0-9._-]+$`)

// cniResults lists libcni's cached results of cluster name's network (not of a cluster
// whose name merely starts with the same letters).
func cniResults(name string) []string {
	ents, _ := os.ReadDir("/var/lib/cni/results")
	var out []string
	for _, e := range ents {
		if m := cniResultRE.FindStringSubmatch(e.Name()); m != nil && m[1] == netName(name) {
			out = append(out, filepath.Join("/var/lib/cni/results", e.Name()))
		}
	}
	return out
}

// handOver appends dirs to the shared-created record of another cluster that runs, so
// that the last cluster to go removes them.
func handOver(self string, dirs []string, logw io.Writer) {
	runs, _ := filepath.Glob(filepath.Join(runRoot, "kube-*"))
	for _, r := range runs {
		if filepath.Base(r) == "kube-"+self {
			continue
		}
		if pid, ok := harness.ReadPid(filepath.Join(r, "containerd.pid")); !ok || !harness.ProcessAlive(pid) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(r, "shared-created"), os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			continue
		}
		_, err = f.WriteString(strings.Join(dirs, "\n") + "\n")
		f.Close()
		if err == nil {
			fmt.Fprintf(logw, "kube: %s: shared directories %v now in use by %s: handed over\n", self, dirs, filepath.Base(r))
			return
		}
	}
	fmt.Fprintf(logw, "kube: %s: keeping shared directories %v (not empty)\n", self, dirs)
}
