package breaker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func TestOpensAfterThresholdConsecutive(t *testing.T) {
	s := New()
	for i := 1; i <= 4; i++ {
		if s.Failure("g", "c1", "Config", "image not found", t0, 5, time.Hour) || s.IsOpen("g") {
			t.Fatalf("open after %d failures", i)
		}
	}
	if !s.Success("g") || s.Get("g").Failures != 0 {
		t.Fatalf("success did not reset the count: %+v", s.Get("g"))
	}
	for i := 1; i <= 4; i++ {
		s.Failure("g", "c1", "Config", "x", t0, 5, time.Hour)
	}
	if !s.Failure("g", "c2", "Transient", "podman down", t0.Add(time.Second), 5, time.Hour) || !s.IsOpen("g") {
		t.Fatalf("not open after 5 failures: %+v", s.Get("g"))
	}
	b := s.Get("g")
	if b.OpenedAt != t0.Add(time.Second) || b.LastFailure != "node c2: Transient: podman down" || b.Failures != 5 {
		t.Fatalf("%+v", b)
	}
	if s.Failure("g", "c3", "Config", "x", t0, 5, time.Hour) {
		t.Fatal("opened twice")
	}
	if s.Success("g") || !s.IsOpen("g") {
		t.Fatal("a success closed an open breaker: only a re-arm does")
	}
	if s.IsOpen("other") {
		t.Fatal("another group is open")
	}
	if !s.Reset("g", t0) || s.IsOpen("g") || s.Get("g").Failures != 0 || s.Get("g").RearmedBy != "command" {
		t.Fatalf("reset: %+v", s.Get("g"))
	}
	if s.Reset("g", t0) {
		t.Fatal("second reset says it was open")
	}
}

func TestThresholdZeroNeverOpens(t *testing.T) {
	s := New()
	for range 100 {
		if s.Failure("g", "c1", "Config", "x", t0, 0, 0) {
			t.Fatal("opened with threshold 0")
		}
	}
	if s.IsOpen("g") {
		t.Fatal("open")
	}
}

func TestFailuresFarApartAreNotConsecutive(t *testing.T) {
	s := New()
	for i := range 10 {
		s.Failure("g", "c1", "Transient", "x", t0.Add(time.Duration(i)*2*time.Hour), 3, time.Hour)
	}
	if s.IsOpen("g") || s.Get("g").Failures != 1 {
		t.Fatalf("%+v", s.Get("g"))
	}
}

func TestExpireIsHalfOpen(t *testing.T) {
	s := New()
	for range 3 {
		s.Failure("g", "c1", "Config", "x", t0, 3, 0)
	}
	if got := s.Expire(t0.Add(29*time.Minute), 30*time.Minute, 3); len(got) != 0 || !s.IsOpen("g") {
		t.Fatalf("re-armed early: %v", got)
	}
	if got := s.Expire(t0.Add(time.Hour), 0, 3); len(got) != 0 {
		t.Fatalf("re-armed with breaker_reset 0: %v", got)
	}
	if got := s.Expire(t0.Add(30*time.Minute), 30*time.Minute, 3); len(got) != 1 || got[0] != "g" || s.IsOpen("g") {
		t.Fatalf("not re-armed: %v %+v", got, s.Get("g"))
	}
	if b := s.Get("g"); b.Failures != 2 || b.RearmedBy != "timeout" {
		t.Fatalf("%+v", b)
	}
	if !s.Failure("g", "c1", "Config", "x", t0.Add(31*time.Minute), 3, 0) {
		t.Fatal("one failure after a timed re-arm did not open it again")
	}
}

func TestSaveLoadAndCounts(t *testing.T) {
	dir := t.TempDir()
	s, err := Load(dir)
	if err != nil || len(s.Groups) != 0 {
		t.Fatalf("missing file: %+v %v", s, err)
	}
	s.CountLaunch("g", true, "")
	s.CountLaunch("g", true, "")
	s.CountLaunch("g", false, "Config")
	s.CountFailure("g", "ResumeTimeout")
	s.CountRefused("g", 3)
	s.Failure("g", "c1", "Config", "x", t0, 1, 0)
	if err := Save(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Launches["g"]
	if c.OK != 2 || c.Failed != 1 || c.Refused != 3 || c.FailuresByClass["Config"] != 1 || c.FailuresByClass["ResumeTimeout"] != 1 || !got.IsOpen("g") {
		t.Fatalf("%+v %+v", c, got.Groups["g"])
	}
	fi, err := os.Stat(filepath.Join(dir, File))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%v %v", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	if err := os.WriteFile(filepath.Join(dir, File), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), File) {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestMessageSaysHowToRearm(t *testing.T) {
	s := New()
	s.Failure("gpu", "gpu3", "Config", "image not found", t0, 1, 0)
	m := Message("gpu", s.Get("gpu"), 30*time.Minute)
	for _, want := range []string{"slurm-elastic breaker reset gpu", "2026-11-28T12:30:00Z", "1 consecutive", "node gpu3: Config: image not found"} {
		if !strings.Contains(m, want) {
			t.Errorf("message lacks %q: %s", want, m)
		}
	}
	if m := Message("gpu", s.Get("gpu"), 0); strings.Contains(m, "wait until") {
		t.Errorf("breaker_reset 0 promises a timeout: %s", m)
	}
}

// Admit is the gate before launches, Record the one record after: the
// verdicts say which failure opened the breaker and that later ones find
// it open; Capacity-like outcomes (not Bootstrap) never count.
func TestAdmitAndRecord(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := Policy{Threshold: 2, Reset: time.Hour}
	s := New()
	if g := s.Admit(now, p, map[string]int{"g": 3}); len(g.Refused) != 0 || len(g.Rearmed) != 0 {
		t.Fatalf("closed breaker refused: %+v", g)
	}
	vs := s.Record(now, p, []Outcome{
		{Group: "g", Node: "n1", Launch: true},
		{Group: "g", Node: "n2", Launch: true, Class: "Capacity", Msg: "full"},
		{Group: "g", Node: "n3", Launch: true, Class: "Config", Msg: "image", Bootstrap: true},
		{Group: "g", Node: "n4", Launch: true, Class: "Config", Msg: "image", Bootstrap: true},
		{Group: "g", Node: "n5", Class: "ResumeTimeout", Msg: "late", Bootstrap: true},
	})
	want := []Verdict{{}, {}, {Open: false}, {Opened: true, Open: true}, {Open: true}}
	for i, v := range vs {
		if v.Opened != want[i].Opened || v.Open != want[i].Open {
			t.Errorf("outcome %d: verdict %+v, want %+v", i, v, want[i])
		}
	}
	c := s.Launches["g"]
	if c.OK != 1 || c.Failed != 3 || c.FailuresByClass["Config"] != 2 || c.FailuresByClass["Capacity"] != 1 || c.FailuresByClass["ResumeTimeout"] != 1 {
		t.Errorf("counts %+v", c)
	}
	g := s.Admit(now, p, map[string]int{"g": 2, "h": 1})
	if _, ok := g.Refused["g"]; !ok || len(g.Refused) != 1 || s.Launches["g"].Refused != 2 {
		t.Fatalf("open breaker not refused: %+v, counts %+v", g, s.Launches["g"])
	}
	if g := s.Admit(now.Add(time.Hour), p, map[string]int{"g": 1}); len(g.Refused) != 0 || !slices.Equal(g.Rearmed, []string{"g"}) {
		t.Fatalf("after breaker.reset: %+v", g)
	}
}
