package nodehealth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slurm-elastic/slurm-elastic/conf"
)

// Metrics are the health daemon's Prometheus metrics, on a registry of
// their own. A nil *Metrics records nothing. Safe for concurrent use.
type Metrics struct {
	reg         *prometheus.Registry
	status      *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	findings    *prometheus.GaugeVec
	actions     *prometheus.CounterVec
	slurmErrors prometheus.Counter

	mu   sync.Mutex
	seen map[[2]string]bool // findings label pairs set last round
}

// NewMetrics registers the metrics for node on a new registry. Never
// blocks.
func NewMetrics(node string) *Metrics {
	c := prometheus.Labels{"node": node}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_health_check_status",
			Help: "Worst status of the check in the last round: 0 OK, 1 FAIL, 2 UNKNOWN.", ConstLabels: c}, []string{"check"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_health_check_duration_seconds",
			Help: "Duration of the check's last run.", ConstLabels: c}, []string{"check"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_health_check_last_success_timestamp_seconds",
			Help: "Unix time of the check's last all-OK round.", ConstLabels: c}, []string{"check"}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "slurm_elastic_health_findings",
			Help: "Findings of the last round by component and status.", ConstLabels: c}, []string{"component", "status"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slurm_elastic_health_actions_total",
			Help: "Drains, undrains and reboot requests applied.", ConstLabels: c}, []string{"op"}),
		slurmErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "slurm_elastic_health_slurm_errors_total",
			Help: "Slurm requests that failed (retried with backoff).", ConstLabels: c}),
		seen: map[[2]string]bool{},
	}
	m.reg.MustRegister(m.status, m.duration, m.lastSuccess, m.findings, m.actions, m.slurmErrors)
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Gatherer exposes the registry (tests).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

func (m *Metrics) observeDuration(check string, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(check).Set(d.Seconds())
}

func (m *Metrics) observeRound(fs []Finding) {
	if m == nil {
		return
	}
	worst := map[string]Status{}
	counts := map[[2]string]int{}
	for _, f := range fs {
		w, ok := worst[f.Check]
		if !ok || rank(f.Status) > rank(w) {
			worst[f.Check] = f.Status
		}
		counts[[2]string{f.Component, f.Status.String()}]++
	}
	now := float64(time.Now().Unix())
	for c, s := range worst {
		m.status.WithLabelValues(c).Set(float64(s))
		if s == OK {
			m.lastSuccess.WithLabelValues(c).Set(now)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.seen {
		if _, ok := counts[k]; !ok {
			m.findings.DeleteLabelValues(k[0], k[1])
			delete(m.seen, k)
		}
	}
	for k, n := range counts {
		m.findings.WithLabelValues(k[0], k[1]).Set(float64(n))
		m.seen[k] = true
	}
}

// rank orders statuses by severity: OK < Unknown < Fail.
func rank(s Status) int {
	switch s {
	case Fail:
		return 2
	case Unknown:
		return 1
	}
	return 0
}

func (m *Metrics) action(op Op) {
	if m != nil {
		m.actions.WithLabelValues(string(op)).Inc()
	}
}

func (m *Metrics) slurmError() {
	if m != nil {
		m.slurmErrors.Inc()
	}
}

// Serve listens on addr (host:port; a host-less ":PORT" is loopback,
// conf.MetricsAddr) and serves /metrics until ctx is done. It returns the
// bound address once listening, and the server's final error on errc.
// Blocks only to bind.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) (net.Addr, <-chan error, error) {
	addr = conf.MetricsAddr(addr)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if log != nil {
		log.Info("metrics listening", "addr", ln.Addr().String())
	}
	return ln.Addr(), errc, nil
}
