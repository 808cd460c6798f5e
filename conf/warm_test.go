package conf_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

func TestWarmValidation(t *testing.T) {
	tests := []struct {
		w    conf.WarmConf
		want string // "" = valid
	}{
		{conf.WarmConf{}, ""},
		{conf.WarmConf{Idle: 2}, ""},
		{conf.WarmConf{Idle: 2, Max: 3}, ""},
		{conf.WarmConf{Idle: -1}, "groups[0].warm: idle -1, max 0: must not be negative"},
		{conf.WarmConf{Idle: 5}, "groups[0].warm.idle: 5: group cpu has only 4 nodes"},
		{conf.WarmConf{Idle: 3, Max: 2}, "groups[0].warm.max: 2: must be at least groups[0].warm.idle (3): raise groups[0].warm.max"},
	}
	c := validConfig()
	c.Groups[0].Nodes, c.Groups[0].Warm = "cpu1,node7", conf.WarmConf{Idle: 1}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "groups[0].warm.idle: group cpu: a warm pool needs the group's nodes as one range") {
		t.Errorf("two ranges: %v", err)
	}
	for _, tc := range tests {
		c := validConfig()
		c.Groups[0].Warm = tc.w
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.w, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want %q", tc.w, err, tc.want)
		}
	}
}

// TestWarmImagesValidation: warm.images names only the group's images,
// with counts >= 0 summing to at most warm.idle.
func TestWarmImagesValidation(t *testing.T) {
	tests := []struct {
		w    conf.WarmConf
		want string // "" = valid
	}{
		{conf.WarmConf{Idle: 2, Images: map[string]int{"cuda12": 1}}, ""},
		{conf.WarmConf{Idle: 2, Images: map[string]int{"cuda12": 1, "rocky9": 1}}, ""},
		{conf.WarmConf{Idle: 2, Images: map[string]int{"cuda12": 0}}, ""},
		{conf.WarmConf{Idle: 2, Images: map[string]int{"cuda11": 1}}, `groups[0].warm.images.cuda11: group cpu has no image "cuda11" in groups[0].images[].name`},
		{conf.WarmConf{Idle: 2, Images: map[string]int{"cuda12": -1}}, "groups[0].warm.images.cuda12: group cpu: -1: must not be negative"},
		{conf.WarmConf{Idle: 2, Images: map[string]int{"cuda12": 2, "rocky9": 1}}, "groups[0].warm.images: group cpu: 3 nodes in named images, more than groups[0].warm.idle (2)"},
		{conf.WarmConf{Images: map[string]int{"cuda12": 1}}, "groups[0].warm.images: group cpu: images without a warm pool (groups[0].warm.idle is 0)"},
	}
	for _, tc := range tests {
		c := validConfig()
		c.Groups[0].Images = []conf.Image{{Name: "cuda12", Image: "registry.example/cuda12:1"}, {Name: "rocky9", Image: "registry.example/rocky9:1"}}
		c.Groups[0].Warm = tc.w
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.w, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want %q", tc.w, err, tc.want)
		}
	}
}

func TestRenderWarmSuspendExcNodes(t *testing.T) {
	c := validConfig()
	var buf bytes.Buffer
	if err := conf.RenderSlurm(&buf, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "SuspendExcNodes") {
		t.Fatalf("SuspendExcNodes without a warm pool:\n%s", buf.String())
	}
	c.Groups[0].Warm = conf.WarmConf{Idle: 2, Max: 3}
	c.Groups[1].Warm = conf.WarmConf{Idle: 1}
	buf.Reset()
	if err := conf.RenderSlurm(&buf, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\nSuspendExcNodes=cpu[1-4]:2,gpu[1-2]:1\n") {
		t.Fatalf("no SuspendExcNodes line:\n%s", buf.String())
	}
}
