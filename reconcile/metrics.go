package reconcile

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/slurm-elastic/slurm-elastic/internal/breaker"
)

// Metrics are the reconciler's Prometheus metrics, on a registry of their
// own. Safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	nodes     *prometheus.GaugeVec
	instances *prometheus.GaugeVec
	cooling   *prometheus.GaugeVec
	actions   *prometheus.CounterVec
	rounds    *prometheus.CounterVec
	duration  prometheus.Histogram
	last      prometheus.Gauge
	open      *prometheus.GaugeVec
	failures  *prometheus.GaugeVec
	launches  *launchCollector
	unknown   *prometheus.GaugeVec
	reloadBad prometheus.Gauge
	reloadOK  prometheus.Gauge
}

// NewMetrics returns the reconciler's metrics on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_nodes",
			Help: "Nodes of each group by Slurm state (see StateOf), as of the last round that looked."}, []string{"group", "state"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_instances",
			Help: "Owned instances of each group, as of the last round that looked."}, []string{"group"}),
		cooling: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_group_cooling",
			Help: "1 while the group is in a capacity cooldown (its idle nodes drained)."}, []string{"group"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slurm_elastic_actions_total",
			Help: "Reconciler actions by kind (unknown: reported only, orphan, dead, stuck, unhealthy, reenable, capacity, cooldown, cooldown_end, breaker, breaker_end, warm, reboot, reimage) and result (ok, error)."}, []string{"kind", "result"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slurm_elastic_rounds_total",
			Help: "Reconcile rounds by result (ok, skipped)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slurm_elastic_round_duration_seconds",
			Help: "Duration of reconcile rounds.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slurm_elastic_last_round_timestamp_seconds",
			Help: "Start of the last round (unix time)."}),
	}
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_breaker_open",
		Help: "1 while the group's circuit breaker is open (its launches refused)."}, []string{"group"})
	m.failures = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_breaker_failures",
		Help: "Consecutive bootstrap failures counted by the group's circuit breaker."}, []string{"group"})
	m.launches = &launchCollector{
		launches: prometheus.NewDesc("slurm_elastic_launches_total",
			"Node launches by the resume hook, by group and result (ok, failed, refused: breaker open).", []string{"group", "result"}, nil),
		failures: prometheus.NewDesc("slurm_elastic_launch_failures_total",
			"Launch failures by group and class (Config, Transient, Capacity, SlurmUpdate; ResumeTimeout from ResumeFailProgram).", []string{"group", "class"}, nil),
	}
	m.unknown = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_unknown_instances",
		Help: "Owned instances the daemon's config does not know (node in no group, group or host not configured), by the instance's group label; never removed."}, []string{"group"})
	m.reloadBad = prometheus.NewGauge(prometheus.GaugeOpts{Name: "slurm_elastic_config_reload_failed",
		Help: "1 when the last config reload failed (the config in effect is older than the file), else 0."})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "slurm_elastic_config_last_reload_success_timestamp_seconds",
		Help: "When the config in effect was loaded (unix time): at start or by the last good reload."})
	m.reg.MustRegister(m.nodes, m.instances, m.cooling, m.actions, m.rounds, m.duration, m.last, m.open, m.failures, m.launches,
		m.unknown, m.reloadBad, m.reloadOK)
	return m
}

// hooks exports the breaker state and launch counts the hooks keep in the
// state dir (st nil: none read) for the configured groups.
func (m *Metrics) hooks(st *breaker.State, groups []string) {
	if st == nil {
		return
	}
	m.open.Reset()
	m.failures.Reset()
	for _, g := range groups {
		b := st.Get(g)
		v := 0.0
		if b.Open {
			v = 1
		}
		m.open.WithLabelValues(g).Set(v)
		m.failures.WithLabelValues(g).Set(float64(b.Failures))
	}
	m.launches.set(st.Launches)
}

// launchCollector exports the hooks' launch counts, kept in the state
// dir, as counters (they only grow, as the file's do).
type launchCollector struct {
	launches, failures *prometheus.Desc
	mu                 sync.Mutex
	counts             map[string]*breaker.Counts
}

func (c *launchCollector) set(counts map[string]*breaker.Counts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = counts
}

func (c *launchCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.launches
	ch <- c.failures
}

func (c *launchCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range slices.Sorted(maps.Keys(c.counts)) {
		n := c.counts[g]
		ch <- prometheus.MustNewConstMetric(c.launches, prometheus.CounterValue, float64(n.OK), g, "ok")
		ch <- prometheus.MustNewConstMetric(c.launches, prometheus.CounterValue, float64(n.Failed), g, "failed")
		ch <- prometheus.MustNewConstMetric(c.launches, prometheus.CounterValue, float64(n.Refused), g, "refused")
		for _, cl := range slices.Sorted(maps.Keys(n.FailuresByClass)) {
			ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(n.FailuresByClass[cl]), g, cl)
		}
	}
}

// unknownInstances sets the unknown instances by group label.
func (m *Metrics) unknownInstances(by map[string]int) {
	m.unknown.Reset()
	for g, n := range by {
		m.unknown.WithLabelValues(g).Set(float64(n))
	}
}

// reloaded records a config load: ok with when, or a failure (the
// success time stays).
func (m *Metrics) reloaded(ok bool, when time.Time) {
	if !ok {
		m.reloadBad.Set(1)
		return
	}
	m.reloadBad.Set(0)
	m.reloadOK.Set(float64(when.UnixNano()) / 1e9)
}

// ReloadFailed reports whether the last config reload failed
// (slurm_elastic_config_reload_failed). Never blocks.
func (m *Metrics) ReloadFailed() bool {
	var d dto.Metric
	if err := m.reloadBad.Write(&d); err != nil {
		return false
	}
	return d.GetGauge().GetValue() == 1
}

func (m *Metrics) action(k Kind, ok bool) {
	res := "ok"
	if !ok {
		res = "error"
	}
	m.actions.WithLabelValues(string(k), res).Inc()
}

func (m *Metrics) round(st Status) {
	m.rounds.WithLabelValues(st.Result).Inc()
	m.duration.Observe(st.Duration.Seconds())
	m.last.Set(float64(st.Time.UnixNano()) / 1e9)
	if st.Result != "ok" {
		return // keep the last known node counts
	}
	m.nodes.Reset()
	m.instances.Reset()
	m.cooling.Reset()
	for _, g := range st.Groups {
		for s, n := range g.States {
			m.nodes.WithLabelValues(g.Name, s).Set(float64(n))
		}
		m.instances.WithLabelValues(g.Name).Set(float64(g.Instances))
		v := 0.0
		if g.CoolingUntil != nil {
			v = 1
		}
		m.cooling.WithLabelValues(g.Name).Set(v)
	}
}

// ActionCount returns how many actions of kind k ended with result ("ok"
// or "error"). Never blocks.
func (m *Metrics) ActionCount(k Kind, result string) uint64 {
	var d dto.Metric
	if err := m.actions.WithLabelValues(string(k), result).Write(&d); err != nil {
		return 0
	}
	return uint64(d.GetCounter().GetValue())
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
