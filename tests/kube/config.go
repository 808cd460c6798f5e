package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfigs writes containerd's config, the CNI network, the kubelet's config, an empty
// resolv.conf for pods, and creates the kubelet's cgroup root in every hierarchy.
func (c *Cluster) writeConfigs(o Options, p ports, bin string) error {
	st := c.StateDir
	cniDir := filepath.Join(st, "cni")
	for _, d := range []string{cniDir, filepath.Join(st, "pod-logs"), filepath.Join(st, "kubelet")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	containerd := fmt.Sprintf(`# Written by the slurm-elastic test harness (tests/kube) for cluster %[1]s.
version = 2
root = "%[2]s/containerd"
state = "%[3]s/containerd"

[grpc]
  address = "%[4]s"

[ttrpc]
  address = "%[4]s.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "%[2]s/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[5]s"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "%[3]s/runc"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[6]s"
    max_conf_num = 1
`, c.Name, st, c.RunDir, c.Socket, PauseImage, cniDir)
	if err := os.WriteFile(filepath.Join(st, "containerd.toml"), []byte(containerd), 0o600); err != nil {
		return err
	}

	routes := []map[string]string{}
	for _, r := range o.PodRoutes {
		routes = append(routes, map[string]string{"dst": r, "gw": c.Gateway})
	}
	cni := map[string]any{
		"cniVersion": "1.0.0",
		"name":       netName(c.Name),
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": c.Bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": c.Subnet, "gateway": c.Gateway}}},
				"routes":  routes,
				"dataDir": filepath.Join(st, "cni-ipam"),
			},
		}},
	}
	b, _ := json.MarshalIndent(cni, "", "  ")
	if err := os.WriteFile(filepath.Join(cniDir, "10-se-kube.conflist"), b, 0o600); err != nil {
		return err
	}

	resolv := filepath.Join(st, "resolv.conf")
	if err := os.WriteFile(resolv, nil, 0o644); err != nil {
		return err
	}
	pki := filepath.Join(st, "pki")
	kubelet := fmt.Sprintf(`# Written by the slurm-elastic test harness (tests/kube) for cluster %[1]s.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[8]s
port: %[2]d
readOnlyPort: 0
healthzPort: 0
enableServer: true
tlsCertFile: %[3]s/kubelet.crt
tlsPrivateKeyFile: %[3]s/kubelet.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[3]s/ca.crt
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: /%[4]s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%[5]s
makeIPTablesUtilChains: false
resolvConf: %[6]s
podLogsDir: %[7]s/pod-logs
evictionHard:
  memory.available: "1%%"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
rotateCertificates: false
serverTLSBootstrap: false
staticPodPath: ""
`, c.Name, p.Kubelet, pki, cgroupName(c.Name), c.Socket, resolv, st, c.Gateway)
	if err := os.WriteFile(filepath.Join(st, "kubelet.yaml"), []byte(kubelet), 0o600); err != nil {
		return err
	}
	return makeCgroupRoot(cgroupName(c.Name))
}

// cgroupMounts returns the mounted cgroup hierarchies (v1 controllers, named ones and the
// unified one) under /sys/fs/cgroup.
func cgroupMounts() []string {
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	if len(out) == 0 {
		out = append(out, "/sys/fs/cgroup")
	}
	return out
}

// makeCgroupRoot creates /<name> in every hierarchy (the kubelet refuses a cgroupRoot that
// is missing in one); cpuset gets its parent's cpus and mems.
func makeCgroupRoot(name string) error {
	for _, m := range cgroupMounts() {
		if _, err := os.Stat(filepath.Join(m, "cgroup.procs")); err != nil {
			continue // a symlink such as cpu,cpuacct → cpu
		}
		d := filepath.Join(m, name)
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		if strings.HasSuffix(m, "/cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(m, f))
				if err != nil {
					return fmt.Errorf("cgroup %s: %w", m, err)
				}
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %w", d, err)
				}
			}
		}
	}
	return nil
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:10]
}
