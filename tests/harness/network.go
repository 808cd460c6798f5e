package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// projectNet is where every harness subnet lives (network-safety rule).
var projectNet = netip.MustParsePrefix("10.222.0.0/16")

// reserved subnets: 10.222.250.0/24 belongs to the runtime/podman integration tests.
var reservedSubnets = []netip.Prefix{netip.MustParsePrefix("10.222.250.0/24")}

// FreeSubnet returns the subnet Start would give a cluster called name now when
// Options.Subnet is empty: 10.222.X.0/24 with X in 1..199 derived from name, moved on to the
// next X while the host has an address or a route (other than an unreachable one) in it, or
// another harness cluster claims it. Use it to know node addresses before Start (pass the
// result as Options.Subnet). It does not block and reserves nothing.
func FreeSubnet(name string) (string, error) {
	used, err := usedSubnets(name)
	if err != nil {
		return "", err
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	start := int(h.Sum32() % 199)
	for i := range 199 {
		x := 1 + (start+i)%199
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 222, byte(x), 0}), 24)
		if !used[p] {
			return p.String(), nil
		}
	}
	return "", fmt.Errorf("no free subnet 10.222.[1-199].0/24")
}

// SubnetHost returns address number host (1..254) of a /24 subnet, e.g. 10.222.7.10 for
// host 10. .1 is the gateway, .2 the head; .3-.127 are free for static containers; dynamic
// addresses come from .128-.254.
func SubnetHost(subnet string, host int) (string, error) {
	p, err := parseSubnet(subnet)
	if err != nil {
		return "", err
	}
	if host < 1 || host > 254 {
		return "", fmt.Errorf("host %d outside 1..254", host)
	}
	a := p.Addr().As4()
	a[3] = byte(host)
	return netip.AddrFrom4(a).String(), nil
}

// parseSubnet accepts a /24 inside 10.222.0.0/16 that is not reserved.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("subnet %q: %w", s, err)
	}
	if p.Bits() != 24 || !p.Addr().Is4() || p.Masked() != p || !projectNet.Contains(p.Addr()) {
		return p, fmt.Errorf("subnet %q: want a /24 network inside %s", s, projectNet)
	}
	for _, r := range reservedSubnets {
		if r.Overlaps(p) {
			return p, fmt.Errorf("subnet %q is reserved for other tests", s)
		}
	}
	return p, nil
}

// usedSubnets returns the /24s in 10.222.0.0/16 that the host uses (routes other than
// unreachable ones, local addresses) or other live harness clusters claim.
func usedSubnets(self string) (map[netip.Prefix]bool, error) {
	used := map[netip.Prefix]bool{}
	for _, r := range reservedSubnets {
		used[r] = true
	}
	out, err := exec.Command("ip", "-o", "-4", "route", "show", "table", "all").Output()
	if err != nil {
		return nil, fmt.Errorf("ip route show (install the Debian package iproute2): %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		switch dst {
		case "unreachable", "blackhole", "prohibit", "throw":
			continue // a guard route, not a network in use
		case "local", "broadcast", "unicast", "anycast", "multicast", "nat":
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil || p.Bits() < 24 || !projectNet.Overlaps(p) {
			continue
		}
		used[netip.PrefixFrom(p.Addr(), 24).Masked()] = true
	}
	// Claims of other harness clusters: live while their Podman service runs, and for a
	// while after the claim was made (a Start in progress).
	dirs, _ := os.ReadDir(runDir)
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == self {
			continue
		}
		cp := filepath.Join(runDir, d.Name(), "subnet")
		b, err := os.ReadFile(cp)
		if err != nil {
			continue
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		st, _ := os.Stat(cp)
		live := st != nil && time.Since(st.ModTime()) < 10*time.Minute
		if pid, ok := ReadPid(filepath.Join(runDir, d.Name(), "podman.pid")); ok && ProcessAlive(pid) {
			live = true
		}
		if live {
			used[p] = true
		}
	}
	return used, nil
}

// AddGuardRoute adds `unreachable SUBNET metric 4000` (the network rule): while the
// subnet's bridge is up its own route wins; when it is down no packet for the subnet can
// leave the machine. Idempotent; it blocks for one `ip` call.
func AddGuardRoute(ctx context.Context, subnet string) error {
	out, err := exec.CommandContext(ctx, "ip", "route", "add", "unreachable", subnet, "metric", "4000").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") {
		return fmt.Errorf("ip route add unreachable %s metric 4000: %w: %s", subnet, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// keepSourceRule is the iptables rule of KeepSource, after "-t nat -I|-D|-C".
func keepSourceRule(from, to string) []string {
	return []string{"POSTROUTING", "-s", from, "-d", to, "-j", "RETURN", "-m", "comment", "--comment", "slurm-elastic-test keep source"}
}

// KeepSource makes the host forward traffic from the project subnet from to the
// project subnet to with its own source address: an iptables nat POSTROUTING RETURN
// rule ahead of netavark's masquerade (netavark masquerades what leaves a Podman
// network). A Slurm head on a Podman network and Slurm nodes on another bridge (tests/kube's
// pods) must see each other's own addresses: slurmstepd connects back to srun at the
// address the launch came from. Idempotent; it blocks for a few iptables calls.
func KeepSource(ctx context.Context, from, to string) error {
	for _, s := range []string{from, to} {
		if p, err := netip.ParsePrefix(s); err != nil || !projectNet.Contains(p.Addr()) || p.Masked() != p {
			return fmt.Errorf("keep source %s -> %s: %q is not a network inside %s", from, to, s, projectNet)
		}
	}
	if HasKeepSource(from, to) {
		return nil
	}
	args := append([]string{"-t", "nat", "-I"}, keepSourceRule(from, to)...)
	if out, err := exec.CommandContext(ctx, "iptables", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DropKeepSource removes what KeepSource(from, to) added. Absent is success; it blocks
// for a few iptables calls.
func DropKeepSource(ctx context.Context, from, to string) error {
	for HasKeepSource(from, to) {
		args := append([]string{"-t", "nat", "-D"}, keepSourceRule(from, to)...)
		if out, err := exec.CommandContext(ctx, "iptables", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// HasKeepSource reports whether the rule of KeepSource(from, to) is in place.
func HasKeepSource(from, to string) bool {
	return exec.Command("iptables", append([]string{"-t", "nat", "-C"}, keepSourceRule(from, to)...)...).Run() == nil
}

// bridgeName is the cluster's bridge interface: podman 4.3 would name it podmanN, counting
// only its own store's networks, so two private stores would pick the same bridge.
func bridgeName(name string) string {
	h := sha256.Sum256([]byte(name))
	return "se" + hex.EncodeToString(h[:])[:10]
}

// createNetwork creates the cluster's network with DNS off (no resolver that forwards
// queries off the machine) and dynamic addresses in .128-.254, then sets its bridge name.
// The Podman service must be started after this (it reads network files at start).
func createNetwork(ctx context.Context, st *store, name, network, subnet, netDir string) error {
	gw, _ := SubnetHost(subnet, 1)
	lo, _ := SubnetHost(subnet, 128)
	if _, err := st.run(ctx, nil, "network", "create", "--disable-dns", "--subnet", subnet, "--gateway", gw,
		"--ip-range", lo+"/25", "--label", labelHarness+"="+name, network); err != nil {
		return fmt.Errorf("create network %s: %w", network, err)
	}
	path := filepath.Join(netDir, network+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("network %s: %s: %w", network, path, err)
	}
	cfg["network_interface"] = bridgeName(name)
	if subs, ok := cfg["subnets"].([]any); ok && len(subs) == 1 {
		if s, ok := subs[0].(map[string]any); ok {
			hi, _ := SubnetHost(subnet, 254)
			s["lease_range"] = map[string]any{"start_ip": lo, "end_ip": hi}
		}
	}
	b, err = json.MarshalIndent(cfg, "", "     ")
	if err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	return writeIfChanged(path, b, 0o644)
}

// ReadPid reads a pid file: the pid, and whether it holds one (> 1). It does not block.
func ReadPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 1
}

// ProcessAlive reports whether process pid exists and is not a zombie. It does not block.
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is gone for our purposes.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
