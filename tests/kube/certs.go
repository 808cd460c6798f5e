package kube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cert is one leaf certificate the cluster needs, signed by its CA.
type cert struct {
	file  string   // pki/<file>.crt and .key
	cn    string   // subject CN
	org   string   // subject O ("" for none)
	sans  []string // DNS or IP names (server certificates)
	usage string   // serverAuth or clientAuth
}

// makeCerts writes the cluster's CA, serving and client certificates and the
// service-account key pair into pki with openssl (EC P-256 leaves; < 1 s in all).
func makeCerts(ctx context.Context, pki, nodeName, nodeIP string) error {
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	run := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "openssl", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("openssl %s: %w: %s", strings.Join(args, " "), err, tail(out, 1000))
		}
		return nil
	}
	p := func(n string) string { return filepath.Join(pki, n) }
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
	if err := run(append(append([]string{"req", "-x509"}, ec...), "-keyout", p("ca.key"), "-out", p("ca.crt"),
		"-days", "30", "-subj", "/CN=se-kube-ca", "-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign")...); err != nil {
		return err
	}
	certs := []cert{
		{"apiserver", "kube-apiserver", "", []string{"IP:127.0.0.1", "IP:" + nodeIP, "IP:10.96.0.1", "DNS:localhost",
			"DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc"}, "serverAuth"},
		{"kubelet", nodeName, "", []string{"IP:" + nodeIP, "IP:127.0.0.1", "DNS:localhost", "DNS:" + nodeName}, "serverAuth"},
		{"admin", "admin", "system:masters", nil, "clientAuth"},
		{"scheduler", "system:kube-scheduler", "", nil, "clientAuth"},
		{"controller-manager", "system:kube-controller-manager", "", nil, "clientAuth"},
		{"node", "system:node:" + nodeName, "system:nodes", nil, "clientAuth"},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters", nil, "clientAuth"},
	}
	for _, c := range certs {
		subj := "/CN=" + c.cn
		if c.org != "" {
			subj = "/O=" + c.org + subj
		}
		if err := run(append(append([]string{"req", "-new"}, ec...), "-keyout", p(c.file+".key"), "-out", p(c.file+".csr"), "-subj", subj)...); err != nil {
			return err
		}
		ext := "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=" + c.usage + "\n"
		if len(c.sans) > 0 {
			ext += "subjectAltName=" + strings.Join(c.sans, ",") + "\n"
		}
		if err := os.WriteFile(p(c.file+".ext"), []byte(ext), 0o600); err != nil {
			return fmt.Errorf("certificates: %w", err)
		}
		if err := run("x509", "-req", "-in", p(c.file+".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
			"-CAcreateserial", "-days", "30", "-extfile", p(c.file+".ext"), "-out", p(c.file+".crt")); err != nil {
			return err
		}
	}
	if err := run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", p("sa.key")); err != nil {
		return err
	}
	return run("pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub"))
}

// kubeconfig renders a kubeconfig for the client certificate pki/<user>.crt.
func kubeconfig(server, pki, user string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: se-kube
  cluster:
    server: %[1]s
    certificate-authority: %[2]s/ca.crt
users:
- name: %[3]s
  user:
    client-certificate: %[2]s/%[3]s.crt
    client-key: %[2]s/%[3]s.key
contexts:
- name: se-kube
  context:
    cluster: se-kube
    user: %[3]s
current-context: se-kube
`, server, pki, user)
}
