package hostlistcmd

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/cmd/internal/exitcode"
)

func runMain(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(append([]string{Prog}, args...), strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestLeanMain(t *testing.T) {
	tests := []struct {
		args          []string
		stdin         string
		code          int
		stdout, inErr string
	}{
		{[]string{"expand", "n[08-10],m1"}, "", 0, "n08\nn09\nn10\nm1\n", ""},
		{[]string{"compress"}, "n3 n1\nn2,m1\n", 0, // order kept, as scontrol does
			"n[3,1-2],m1\n", ""},
		{[]string{"compress", "b2", "b1"}, "ignored", 0, "b[2,1]\n", ""},
		{[]string{"expand", "n[1-"}, "", exitcode.Usage, "", Prog + `: hostlist "n[1-": unbalanced bracket`},
		{[]string{"compress", "x[1]"}, "", exitcode.Usage, "", "cannot contain brackets"},
		{[]string{"expand"}, "", exitcode.Usage, "", Prog + ": hostlist expand: want exactly one EXPR"},
		{[]string{"bogus"}, "", exitcode.Usage, "", "No help topic for 'bogus'"},
		{[]string{"expand", "-y"}, "", exitcode.Usage, "Incorrect Usage: flag provided but not defined: -y", "flag provided but not defined: -y"},
	}
	for _, tt := range tests {
		code, out, errOut := runMain(t, tt.stdin, tt.args...)
		if code != tt.code || !strings.HasPrefix(out, tt.stdout) || (tt.stdout == "" && out != "") || !strings.Contains(errOut, tt.inErr) {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.stdout, tt.inErr)
		}
	}
}

func TestExitErrors(t *testing.T) {
	var out bytes.Buffer
	err := Expand(&out, []string{"a", "b"})
	var ee *exitcode.Error
	if !errors.As(err, &ee) || ee.Code != exitcode.Usage || out.Len() != 0 {
		t.Errorf("Expand(2 args) = %v, wrote %q", err, out.String())
	}
	err = Compress(&out, strings.NewReader("ok1\nbad name[\n"), nil)
	if !errors.As(err, &ee) || ee.Code != exitcode.Usage || out.Len() != 0 {
		t.Errorf("Compress(bad stdin) = %v, wrote %q", err, out.String())
	}
	if err := Run("nope", nil, &out, nil); !errors.As(err, &ee) || ee.Code != exitcode.Usage {
		t.Errorf("Run(nope) = %v", err)
	}
}
