package pkgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRPMSigned: with PKG_SIGNING_KEY, build-pkg.sh signs the RPM; rpm -K
// refuses it until the public key is imported and accepts it after. A
// missing key file is a clear error, not an unsigned package.
func TestRPMSigned(t *testing.T) {
	f := get(t)
	gh := t.TempDir()
	must(t, os.Chmod(gh, 0o700))
	gpg := func(args ...string) []byte {
		t.Helper()
		out, err := runErr("gpg", append([]string{"--batch", "--homedir", gh}, args...)...)
		if err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
		return []byte(out)
	}
	t.Cleanup(func() { _ = exec.Command("gpgconf", "--homedir", gh, "--kill", "all").Run() })
	params := filepath.Join(gh, "params")
	must(t, os.WriteFile(params, []byte("%no-protection\nKey-Type: RSA\nKey-Length: 2048\n"+
		"Name-Real: slurm-elastic package test\nName-Email: pkgtest@localhost\nExpire-Date: 0\n%commit\n"), 0o600))
	gpg("--gen-key", params)
	sec, pub := filepath.Join(gh, "sec.asc"), filepath.Join(gh, "pub.asc")
	must(t, os.WriteFile(sec, gpg("--armor", "--export-secret-keys", "pkgtest@localhost"), 0o600))
	must(t, os.WriteFile(pub, gpg("--armor", "--export", "pkgtest@localhost"), 0o644))

	out := t.TempDir()
	build := func(key string) (string, error) {
		cmd := exec.Command(filepath.Join(f.root, "packaging", "build-pkg.sh"), "rpm", out)
		cmd.Dir = f.root
		cmd.Env = append(os.Environ(), "PKG_VERSION=1.0.0", "SE_BIN_DIR="+f.bins, "PKG_CONFIG="+f.config,
			"SOURCE_DATE_EPOCH="+sdeEpoch, "PKG_SIGNING_KEY="+key)
		o, err := cmd.CombinedOutput()
		l := lines(string(o))
		if err != nil || len(l) == 0 {
			return string(o), err
		}
		return l[len(l)-1], nil
	}
	if o, err := build(filepath.Join(gh, "missing.asc")); err == nil || !strings.Contains(o, "missing.asc is not a readable key file") {
		t.Errorf("build with a missing key: err %v, output %q; want a clear error", err, o)
	}
	pkg, err := build(sec)
	if err != nil {
		t.Fatalf("build-pkg.sh rpm with PKG_SIGNING_KEY: %v\n%s", err, pkg)
	}
	db := t.TempDir()
	if o, _ := runErr("rpm", "--dbpath", db, "-K", pkg); !strings.Contains(o, "SIGNATURES NOT OK") {
		t.Errorf("rpm -K before the key is imported = %q; want SIGNATURES NOT OK", o)
	}
	run(t, "rpm", "--dbpath", db, "--import", pub)
	if o := run(t, "rpm", "--dbpath", db, "-K", pkg); !strings.Contains(o, "digests signatures OK") {
		t.Errorf("rpm -K after the import = %q; want digests signatures OK", o)
	}
	// The packages of the other tests are unsigned: digests only.
	if o := run(t, "rpm", "--dbpath", db, "-K", f.rpm["1.0.0"]); !strings.Contains(o, "digests OK") || strings.Contains(o, "signatures") {
		t.Errorf("rpm -K of an unsigned build = %q; want digests OK", o)
	}
}
