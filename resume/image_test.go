package resume

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/slurm"
	"github.com/slurm-elastic/slurm-elastic/runtime/runtimefake"
)

// imgGroup has static features fast and ib and the images rocky9 and cuda12.
func imgGroup() *conf.Group {
	return &conf.Group{Name: "cloud", Template: conf.Template{Image: "node:1", Features: []string{"fast", "ib"}},
		Images: []conf.Image{{Name: "rocky9", Image: "rocky:9"}, {Name: "cuda12", Image: "cuda:12"}}}
}

func TestImageFor(t *testing.T) {
	for _, tc := range []struct {
		features string
		want     string
		mapped   bool // no "why"
	}{
		{"", "", true},                           // no -C: default
		{"rocky9", "rocky9", true},               // a plain name
		{"fast", "", true},                       // only static features: default
		{"rocky9&fast", "rocky9", true},          // mixed with a static feature
		{"fast&cuda12", "cuda12", true},          // in any position
		{"fast,cuda12", "cuda12", true},          // ',' is AND
		{"rocky9|cuda12", "rocky9", true},        // OR: the first alternative, as Slurm
		{"cuda12|rocky9", "cuda12", true},        //
		{"gpu|cuda12", "cuda12", true},           // the first alternative the group has
		{"fast|cuda12", "", true},                // the first alternative names no image: default
		{"(rocky9|cuda12)&ib", "rocky9", true},   // parentheses distribute
		{"ib&(gpu|cuda12)", "cuda12", true},      //
		{"(fast&rocky9)|cuda12", "rocky9", true}, //
		{"gpu", "", false},                       // another group's feature only
		{"rocky9&cuda12", "", false},             // two images at once (MutuallyExclusive rejects it at submit)
		{"[rocky9|cuda12]", "", false},           // Slurm sets no changeable feature for [ ] or *
		{"rocky9*2", "", false},                  //
		{"rocky9&", "", false},                   // malformed
		{"(rocky9", "", false},                   //
		{"rocky9)", "", false},                   //
		{"!rocky9", "", false},                   //
		{"rocky 9", "", false},                   //
	} {
		got, why := ImageFor(tc.features, imgGroup())
		if got != tc.want || (why == "") != tc.mapped {
			t.Errorf("ImageFor(%q) = %q, why %q; want %q (mapped %v)", tc.features, got, why, tc.want, tc.mapped)
		}
	}
	// A group without images: always the default, nothing to say.
	g := imgGroup()
	g.Images = nil
	if got, why := ImageFor("rocky9", g); got != "" || why != "" {
		t.Errorf("group without images: %q %q", got, why)
	}
	// Never a reference a user typed: only the group's names come back.
	if got, _ := ImageFor("docker.io/evil:1", imgGroup()); got != "" {
		t.Errorf("a reference came back: %q", got)
	}
	// A huge expression is cut off, not expanded.
	big := strings.Repeat("(a|b)&", 20) + "rocky9"
	if got, why := ImageFor(big, imgGroup()); got != "" || !strings.Contains(why, "alternatives") {
		t.Errorf("huge expression: %q %q", got, why)
	}
}

// TestResumeBootsTheJobsImage: from one resume file, each node boots the
// image its job's -C names (reference and name, which the instance
// carries), a job without -C and a node without a job the default, and an
// expression that cannot be mapped the default too.
func TestResumeBootsTheJobsImage(t *testing.T) {
	e := newEnv(t, runtimefake.Options{Images: []string{"node:1", "rocky:9", "cuda:12"}})
	e.d.Config.Groups[0].Template.Features = []string{"fast"}
	e.d.Config.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "rocky:9"}, {Name: "cuda12", Image: "cuda:12"}}
	rf, err := ParseResumeFile([]byte(`{"jobs":[
		{"job_id":1,"features":"rocky9","nodes_alloc":"cloud1","nodes_resume":"cloud1"},
		{"job_id":2,"features":"fast&cuda12","nodes_alloc":"cloud2","nodes_resume":"cloud2"},
		{"job_id":3,"features":null,"nodes_alloc":"cloud3","nodes_resume":"cloud3"},
		{"job_id":4,"features":"[rocky9*1]","nodes_alloc":"ghost1","nodes_resume":"ghost1"}],
		"all_nodes_resume":"cloud[1-3]"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Resume(context.Background(), e.d, []string{"cloud1", "cloud2", "cloud3", "cloud4"}, rf); err != nil {
		t.Fatal(err)
	}
	inst := e.instances(t)
	for node, want := range map[string][2]string{
		"cloud1": {"rocky9", "rocky:9"}, "cloud2": {"cuda12", "cuda:12"},
		"cloud3": {"", "node:1"}, "cloud4": {"", "node:1"},
	} {
		if in := inst[node]; in.Image != want[0] || e.rt.ImageRef(node) != want[1] {
			t.Errorf("%s: image %q from %q, want %q from %q", node, in.Image, e.rt.ImageRef(node), want[0], want[1])
		}
	}
}

// TestResumeMissingImageKeepsGroup: a named image that cannot start fails
// its node (DOWN, Config, so its job is requeued) but, unlike a broken
// default image, leaves the group's idle nodes in scheduling: the default
// and the other images still start.
func TestResumeMissingImageKeepsGroup(t *testing.T) {
	e := newEnv(t, runtimefake.Options{Images: []string{"node:1"}}) // rocky:9 is missing
	e.d.Config.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "rocky:9"}}
	rf, err := ParseResumeFile([]byte(`{"jobs":[{"job_id":1,"features":"rocky9","nodes_resume":"cloud1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Resume(context.Background(), e.d, []string{"cloud1"}, rf); err == nil || !strings.Contains(err.Error(), `"rocky:9"`) {
		t.Fatalf("want cloud1's launch of rocky:9 to fail, got %v", err)
	}
	if sn := e.node(t, "cloud1"); sn.State != slurm.StateDown || !strings.HasPrefix(sn.Reason, "slurm-elastic: (Code:Config) ") {
		t.Errorf("cloud1: %s %q, want DOWN with a Config reason", sn.State, sn.Reason)
	}
	for _, n := range []string{"cloud2", "cloud3", "cloud4"} {
		if sn := e.node(t, n); sn.State == slurm.StateDown || sn.Reason != "" {
			t.Errorf("%s: %s %q: a missing named image took an idle sibling out of scheduling", n, sn.State, sn.Reason)
		}
	}
	// The default image still starts.
	if err := Resume(context.Background(), e.d, []string{"cloud2"}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestResumeJoblessBootsActiveImage: a node resumed without a job (warm
// pool, `scontrol power up`), or for a job that names no image, boots the
// image its active features in Slurm name, so that a `-C` job Slurm places
// there because of them runs in that image; none or two active boot the
// default, and so does a Slurm that cannot be asked. Before the fix cloud1 booted the default while
// Slurm held `rocky9` active: a `-C rocky9` job ran in the default image.
func TestResumeJoblessBootsActiveImage(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, runtimefake.Options{Images: []string{"node:1", "rocky:9", "cuda:12"}})
	e.d.Config.Groups[0].Template.Features = []string{"fast"}
	e.d.Config.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "rocky:9"}, {Name: "cuda12", Image: "cuda:12"}}
	for node, active := range map[string][]string{"cloud1": {"fast", "rocky9"}, "cloud2": {"fast", "rocky9"}, "cloud3": {"rocky9", "cuda12"}} {
		if err := e.sc.SetActiveFeatures(ctx, node, active); err != nil {
			t.Fatal(err)
		}
	}
	// cloud2's job names no image (-C fast): what Slurm holds active wins
	// (a warm pool set rocky9 and a job without -C took the node). cloud4's
	// job asks for cuda12: the job wins over what is active.
	if err := e.sc.SetActiveFeatures(ctx, "cloud4", []string{"rocky9"}); err != nil {
		t.Fatal(err)
	}
	rf, err := ParseResumeFile([]byte(`{"jobs":[{"job_id":1,"features":"cuda12","nodes_resume":"cloud4"},
		{"job_id":2,"features":"fast","nodes_resume":"cloud2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Resume(ctx, e.d, []string{"cloud1", "cloud2", "cloud3", "cloud4"}, rf); err != nil {
		t.Fatal(err)
	}
	inst := e.instances(t)
	for node, want := range map[string]string{"cloud1": "rocky9", "cloud2": "rocky9", "cloud3": "", "cloud4": "cuda12"} {
		if inst[node].Image != want {
			t.Errorf("%s: image %q, want %q", node, inst[node].Image, want)
		}
	}

	// Slurm cannot be asked: the default, and the resume goes on.
	e2 := newEnv(t, runtimefake.Options{Images: []string{"node:1", "rocky:9"}})
	e2.d.Config.Groups[0].Images = []conf.Image{{Name: "rocky9", Image: "rocky:9"}}
	if err := e2.sc.SetActiveFeatures(ctx, "cloud1", []string{"rocky9"}); err != nil {
		t.Fatal(err)
	}
	e2.sc.SetFault(func(op string, _ []string, _ slurm.NodeUpdate) error {
		if op == "nodes" {
			return errors.New("slurmctld not answering")
		}
		return nil
	})
	if err := Resume(ctx, e2.d, []string{"cloud1"}, nil); err != nil {
		t.Fatal(err)
	}
	if in := e2.instances(t)["cloud1"]; in.Image != "" {
		t.Errorf("cloud1 with Slurm not answering: image %q, want the default", in.Image)
	}
}
