package conf_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/slurm-elastic/slurm-elastic/conf"
	"github.com/slurm-elastic/slurm-elastic/internal/hostlist"
)

// bigConfig has 10,000 nodes in four groups of 2,500.
func bigConfig() *conf.Config {
	c := validConfig()
	c.Groups = c.Groups[:1]
	base := c.Groups[0]
	c.Groups = nil
	for i := range 4 {
		g := base
		g.Name = fmt.Sprintf("g%d", i)
		g.Partition = ""
		g.Nodes = fmt.Sprintf("n[%05d-%05d]", i*2500+1, (i+1)*2500)
		c.Groups = append(c.Groups, g)
	}
	c.ApplyDefaults()
	return c
}

// A validated config keeps the Inventory Validate built; an unvalidated
// one builds a new one per call (never stored).
func TestInventoryBuiltOnce(t *testing.T) {
	c := bigConfig()
	if c.Inventory() == c.Inventory() {
		t.Error("an unvalidated config stored an inventory")
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if inv := c.Inventory(); inv != c.Inventory() || len(inv.Nodes()) != 10000 {
		t.Error("Validate did not build the one inventory")
	}
}

func TestGroupOf(t *testing.T) {
	for _, validate := range []bool{true, false} {
		t.Run(fmt.Sprintf("validated=%v", validate), func(t *testing.T) {
			c := bigConfig()
			if validate {
				if err := c.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			inv := c.Inventory()
			for i := 1; i <= 10000; i++ {
				node := fmt.Sprintf("n%05d", i)
				g, ok := inv.GroupOf(node)
				want := fmt.Sprintf("g%d", (i-1)/2500)
				if !ok || g.Name != want {
					t.Fatalf("GroupOf(%s) = %v, %v; want %s", node, g, ok, want)
				}
				if g != &c.Groups[(i-1)/2500] {
					t.Fatalf("GroupOf(%s) does not point into c.Groups", node)
				}
			}
			for _, node := range []string{"n0", "n10001", "n1", "", "n[00001-00002]"} {
				if g, ok := inv.GroupOf(node); ok {
					t.Errorf("GroupOf(%q) = %s, want not found", node, g.Name)
				}
			}
		})
	}
}

func TestGroupOfFollowsChanges(t *testing.T) {
	c := validConfig()
	if g, ok := c.Inventory().GroupOf("cpu1"); !ok || g.Name != "cpu" {
		t.Fatalf("GroupOf(cpu1) = %v %v", g, ok)
	}
	c.Groups[0].Nodes = "cpu[2-4]"
	if g, ok := c.Inventory().GroupOf("cpu1"); ok {
		t.Errorf("GroupOf(cpu1) after removing it = %s, want not found", g.Name)
	}
	c.Groups = append(c.Groups, conf.Group{Name: "new", Nodes: "new1"})
	if g, ok := c.Inventory().GroupOf("new1"); !ok || g.Name != "new" {
		t.Errorf("GroupOf(new1) after adding a group = %v %v", g, ok)
	}
}

func TestGroupOfConcurrent(t *testing.T) {
	inv := bigConfig().Inventory()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w*1250 + 1; i <= (w+1)*1250; i++ {
				node := fmt.Sprintf("n%05d", i)
				if g, ok := inv.GroupOf(node); !ok || g.Name != fmt.Sprintf("g%d", (i-1)/2500) {
					errs <- node
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for node := range errs {
		t.Errorf("GroupOf(%s) wrong under concurrency", node)
	}
}

func TestGroupAndGroupNodes(t *testing.T) {
	c := validConfig()
	g, ok := c.Inventory().Group("gpu")
	if !ok || g != &c.Groups[1] {
		t.Fatalf("Group(gpu) = %v %v", g, ok)
	}
	if _, ok := c.Inventory().Group("nope"); ok {
		t.Error("Group(nope) found")
	}
	got := c.Inventory().GroupNodes(g)
	if want := []string{"gpu1", "gpu2"}; !slices.Equal(got, want) {
		t.Errorf("GroupNodes(gpu) = %v, want %v", got, want)
	}
	got[0] = "changed" // the caller owns the slice
	if again := c.Inventory().GroupNodes(g); again[0] != "gpu1" {
		t.Errorf("GroupNodes returned shared storage: %v", again)
	}
	other := conf.Group{Nodes: "x[1-3]"}
	if got := c.Inventory().GroupNodes(&other); !slices.Equal(got, []string{"x1", "x2", "x3"}) {
		t.Errorf("GroupNodes(foreign group) = %v", got)
	}
	bad := conf.Group{Nodes: "x[1-"}
	if got := c.Inventory().GroupNodes(&bad); got != nil {
		t.Errorf("GroupNodes(bad hostlist) = %v, want nil", got)
	}
	big := bigConfig()
	if n := len(big.Inventory().GroupNodes(&big.Groups[3])); n != 2500 {
		t.Errorf("GroupNodes(g3) has %d nodes, want 2500", n)
	}
	if h := hostlist.Compress(big.Inventory().GroupNodes(&big.Groups[3])); h != "n[07501-10000]" {
		t.Errorf("GroupNodes(g3) compresses to %s", h)
	}
}

// BenchmarkGroupOf is the lookup cost per node on 10,000 nodes.
func BenchmarkGroupOf(b *testing.B) {
	c := bigConfig()
	names := make([]string, 10000)
	for i := range names {
		names[i] = fmt.Sprintf("n%05d", i+1)
	}
	inv := c.Inventory()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := inv.GroupOf(names[i%len(names)]); !ok {
			b.Fatal("not found")
		}
	}
}
