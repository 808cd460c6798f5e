package packaged

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// yamlEdit is one change an admin makes to the shipped config with an
// editor: the value at Path becomes Value, or, when the last key of Path is
// absent from its (block) mapping, a line "key: Value" is added to it.
type yamlEdit struct {
	// Path is slash-separated: mapping keys, and a sequence element picked
	// by its name key, e.g. groups/cpu/template/image,
	// podman/hosts/local/uri.
	Path string
	// Value is YAML text: a plain scalar, a "quoted" one, a [flow, list]
	// or a {flow: mapping}.
	Value string
}

// applyEdits returns src with each edit applied in place, line by line, so
// every comment and every other line stays as shipped. It fails, naming
// the edit, when a path does not exist (but for an added last key) or its
// value is not a one-line scalar, flow list or flow mapping.
func applyEdits(src []byte, edits []yamlEdit) ([]byte, error) {
	out := src
	for _, e := range edits {
		var err error
		if out, err = applyEdit(out, e); err != nil {
			return nil, fmt.Errorf("edit %s: %w", e.Path, err)
		}
	}
	return out, nil
}

func applyEdit(src []byte, e yamlEdit) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("not one YAML document")
	}
	keys := strings.Split(e.Path, "/")
	n := doc.Content[0]
	for i, k := range keys {
		last := i == len(keys)-1
		switch n.Kind {
		case yaml.MappingNode:
			v := mapValue(n, k)
			if v == nil && last {
				return addKey(src, n, k, e.Value)
			}
			if v == nil {
				return nil, fmt.Errorf("no key %q", k)
			}
			n = v
		case yaml.SequenceNode:
			var found *yaml.Node
			for _, el := range n.Content {
				if nm := mapValue(el, "name"); el.Kind == yaml.MappingNode && nm != nil && nm.Value == k {
					found = el
				}
			}
			if found == nil {
				return nil, fmt.Errorf("no element named %q", k)
			}
			n = found
		default:
			return nil, fmt.Errorf("%q is inside a scalar", k)
		}
	}
	return replaceValue(src, n, e.Value)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// replaceValue replaces the text of n (a one-line value) on its line.
func replaceValue(src []byte, n *yaml.Node, value string) ([]byte, error) {
	lines := strings.Split(string(src), "\n")
	l, c := n.Line-1, n.Column-1
	line := lines[l]
	end := -1
	switch {
	case n.Kind == yaml.ScalarNode && n.Style == 0:
		if strings.HasPrefix(line[c:], n.Value) {
			end = c + len(n.Value)
		}
	case n.Kind == yaml.ScalarNode && (n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle):
		if q := strings.IndexByte(line[c+1:], line[c]); q >= 0 {
			end = c + 1 + q + 1
		}
	case n.Kind == yaml.SequenceNode && n.Style == yaml.FlowStyle:
		if q := strings.IndexByte(line[c:], ']'); q >= 0 {
			end = c + q + 1
		}
	case n.Kind == yaml.MappingNode && n.Style == yaml.FlowStyle:
		if q := strings.IndexByte(line[c:], '}'); q >= 0 {
			end = c + q + 1
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("line %d: not a one-line scalar, flow list or flow mapping", n.Line)
	}
	lines[l] = line[:c] + value + line[end:]
	return []byte(strings.Join(lines, "\n")), nil
}

// addKey adds "key: value" as the last line of the block mapping m.
func addKey(src []byte, m *yaml.Node, key, value string) ([]byte, error) {
	if m.Style == yaml.FlowStyle || len(m.Content) == 0 {
		return nil, fmt.Errorf("line %d: cannot add %q to a flow or empty mapping", m.Line, key)
	}
	lines := strings.Split(string(src), "\n")
	at := lastLine(m) // 1-based: the new line goes after it
	indent := strings.Repeat(" ", m.Content[0].Column-1)
	lines = slices.Insert(lines, at, indent+key+": "+value)
	return []byte(strings.Join(lines, "\n")), nil
}

func lastLine(n *yaml.Node) int {
	l := n.Line
	for _, c := range n.Content {
		l = max(l, lastLine(c))
	}
	return l
}

// changedPaths decodes a and b and returns the paths (as in yamlEdit.Path)
// whose values differ, sorted: what an edit really changed.
func changedPaths(a, b []byte) ([]string, error) {
	var va, vb any
	if err := yaml.Unmarshal(a, &va); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(b, &vb); err != nil {
		return nil, err
	}
	var out []string
	diffValues("", va, vb, &out)
	slices.Sort(out)
	return out, nil
}

func diffValues(path string, a, b any, out *[]string) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "/" + k
	}
	ma, oka := a.(map[string]any)
	mb, okb := b.(map[string]any)
	if oka && okb {
		seen := map[string]bool{}
		for k := range ma {
			seen[k] = true
			diffValues(join(k), ma[k], mb[k], out)
		}
		for k := range mb {
			if !seen[k] {
				diffValues(join(k), nil, mb[k], out)
			}
		}
		return
	}
	sa, oka := a.([]any)
	sb, okb := b.([]any)
	if oka && okb && len(sa) == len(sb) && allNamed(sa) && allNamed(sb) {
		for i := range sa {
			na, nb := sa[i].(map[string]any)["name"], sb[i].(map[string]any)["name"]
			if na != nb {
				*out = append(*out, path)
				return
			}
			diffValues(join(fmt.Sprint(na)), sa[i], sb[i], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, path)
	}
}

func allNamed(s []any) bool {
	for _, e := range s {
		m, ok := e.(map[string]any)
		if !ok || m["name"] == nil {
			return false
		}
	}
	return true
}

// TestAdminEdits applies the admin's edits of the packaged test to the
// shipped example: each lands where it should, changes nothing else, and
// keeps every comment line.
func TestAdminEdits(t *testing.T) {
	example, err := os.ReadFile("../../packaging/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edits := adminEdits(site{
		Cluster: "se-x", ConfServer: "10.222.9.2", MungeKey: "/var/lib/x/munge.key",
		Network: "se-x-net", ImageTag: "se-x", PodmanURI: "unix:///run/podman/podman.sock",
	}, example)
	got, err := applyEdits(example, edits)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := changedPaths(example, got)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range edits {
		want = append(want, e.Path)
	}
	slices.Sort(want)
	if !slices.Equal(paths, want) {
		t.Errorf("changed paths %v, want exactly the edits' %v", paths, want)
	}
	var v struct {
		Cluster string `yaml:"cluster"`
		Slurm   struct {
			ConfServer string `yaml:"conf_server"`
		} `yaml:"slurm"`
		Groups []struct {
			Name     string `yaml:"name"`
			Template struct {
				Image   string            `yaml:"image"`
				Network string            `yaml:"network"`
				DNS     []string          `yaml:"dns"`
				Env     map[string]string `yaml:"env"`
			} `yaml:"template"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(got, &v); err != nil {
		t.Fatal(err)
	}
	if v.Cluster != "se-x" || v.Slurm.ConfServer != "10.222.9.2" || len(v.Groups) == 0 {
		t.Fatalf("edited config: %+v", v)
	}
	cpu := v.Groups[0]
	if cpu.Name != "cpu" || cpu.Template.Image != "localhost/slurm-elastic-node:se-x" || cpu.Template.Network != "se-x-net" ||
		!slices.Equal(cpu.Template.DNS, []string{"none"}) || cpu.Template.Env["SLURM_ELASTIC_HEALTH"] != "1" {
		t.Errorf("cpu group after the edits: %+v", cpu)
	}
	comments := func(b []byte) (n int) {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				n++
			}
		}
		return n
	}
	if comments(got) != comments(example) {
		t.Errorf("comment lines: %d, shipped %d", comments(got), comments(example))
	}
}

func TestApplyEditErrors(t *testing.T) {
	src := []byte("a:\n  b: 1\n  c: {x: 1}\nl:\n  - name: n\n    v: 2\n")
	for _, e := range []yamlEdit{{"nope/b", "2"}, {"l/m/v", "3"}, {"a/c/y", "2"}, {"a/b/z", "1"}} {
		if _, err := applyEdits(src, []yamlEdit{e}); err == nil {
			t.Errorf("edit %s applied, want an error", e.Path)
		}
	}
	got, err := applyEdits(src, []yamlEdit{{"l/n/v", "5"}, {"a/d", `"x"`}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a:\n  b: 1\n  c: {x: 1}\n  d: \"x\"\nl:\n  - name: n\n    v: 5\n"; string(got) != want {
		t.Errorf("edited:\n%s\nwant:\n%s", got, want)
	}
}
