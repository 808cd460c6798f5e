package reconcile

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Metrics are the reconciler's Prometheus metrics, written in the text
// exposition format (version 0.0.4) by a small hand-written encoder: the
// set is tiny and fixed, and it keeps the daemon free of a metrics
// dependency until the project adds client_golang. Safe for concurrent use.
type Metrics struct {
	mu        sync.Mutex
	nodes     map[[2]string]int    // {group, state} -> nodes
	instances map[string]int       // group -> instances
	actions   map[[2]string]uint64 // {kind, result} -> count
	rounds    map[string]uint64    // result -> count
	durSum    float64              // seconds, rounds that looked
	durCount  uint64
	lastDur   float64
	lastTime  float64 // unix seconds of the last round
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{nodes: map[[2]string]int{}, instances: map[string]int{}, actions: map[[2]string]uint64{}, rounds: map[string]uint64{}}
}

func (m *Metrics) action(k Kind, ok bool) {
	res := "ok"
	if !ok {
		res = "error"
	}
	m.mu.Lock()
	m.actions[[2]string{string(k), res}]++
	m.mu.Unlock()
}

func (m *Metrics) round(st Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rounds[st.Result]++
	sec := st.Duration.Seconds()
	m.durSum += sec
	m.durCount++
	m.lastDur = sec
	m.lastTime = float64(st.Time.UnixNano()) / 1e9
	if st.Result != "ok" {
		return // keep the last known node counts
	}
	clear(m.nodes)
	clear(m.instances)
	for _, g := range st.Groups {
		for s, n := range g.States {
			m.nodes[[2]string{g.Name, s}] = n
		}
		m.instances[g.Name] = g.Instances
	}
}

// ActionCount returns how many actions of kind k ended with result ("ok"
// or "error").
func (m *Metrics) ActionCount(k Kind, result string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.actions[[2]string{string(k), result}]
}

// WriteTo writes every metric in the text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	var b strings.Builder
	b.WriteString("# HELP slurm_elastic_nodes Nodes of each group by Slurm state, as of the last round.\n# TYPE slurm_elastic_nodes gauge\n")
	for _, k := range slices.SortedFunc(maps.Keys(m.nodes), cmpPair) {
		fmt.Fprintf(&b, "slurm_elastic_nodes{group=%q,state=%q} %d\n", k[0], k[1], m.nodes[k])
	}
	b.WriteString("# HELP slurm_elastic_instances Owned instances of each group, as of the last round.\n# TYPE slurm_elastic_instances gauge\n")
	for _, g := range slices.Sorted(maps.Keys(m.instances)) {
		fmt.Fprintf(&b, "slurm_elastic_instances{group=%q} %d\n", g, m.instances[g])
	}
	b.WriteString("# HELP slurm_elastic_actions_total Reconciler actions by kind (orphan, dead, stuck, unhealthy, reenable) and result.\n# TYPE slurm_elastic_actions_total counter\n")
	for _, k := range slices.SortedFunc(maps.Keys(m.actions), cmpPair) {
		fmt.Fprintf(&b, "slurm_elastic_actions_total{kind=%q,result=%q} %d\n", k[0], k[1], m.actions[k])
	}
	b.WriteString("# HELP slurm_elastic_rounds_total Reconcile rounds by result (ok, skipped).\n# TYPE slurm_elastic_rounds_total counter\n")
	for _, r := range slices.Sorted(maps.Keys(m.rounds)) {
		fmt.Fprintf(&b, "slurm_elastic_rounds_total{result=%q} %d\n", r, m.rounds[r])
	}
	fmt.Fprintf(&b, "# HELP slurm_elastic_round_duration_seconds Duration of reconcile rounds.\n# TYPE slurm_elastic_round_duration_seconds summary\n"+
		"slurm_elastic_round_duration_seconds_sum %g\nslurm_elastic_round_duration_seconds_count %d\n", m.durSum, m.durCount)
	fmt.Fprintf(&b, "# HELP slurm_elastic_last_round_duration_seconds Duration of the last round.\n# TYPE slurm_elastic_last_round_duration_seconds gauge\nslurm_elastic_last_round_duration_seconds %g\n", m.lastDur)
	fmt.Fprintf(&b, "# HELP slurm_elastic_last_round_timestamp_seconds Start of the last round (unix time).\n# TYPE slurm_elastic_last_round_timestamp_seconds gauge\nslurm_elastic_last_round_timestamp_seconds %.3f\n", m.lastTime)
	m.mu.Unlock()
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// ServeHTTP serves the metrics (GET /metrics).
func (m *Metrics) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.WriteTo(w)
}

func cmpPair(a, b [2]string) int {
	if c := strings.Compare(a[0], b[0]); c != 0 {
		return c
	}
	return strings.Compare(a[1], b[1])
}
