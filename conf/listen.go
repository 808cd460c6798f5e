package conf

import (
	"net"
	"strings"
)

// MetricsHost is the host a metrics listen address without one binds to:
// loopback, so /metrics (cluster, group and node names, failure messages)
// is not served to the network unless the admin says so.
const MetricsHost = "127.0.0.1"

// MetricsAddr is the address a metrics listener (daemon.metrics_listen,
// health.metrics_listen, --metrics-listen) binds for the configured
// listen: a host-less ":PORT" means MetricsHost:PORT; an explicit host,
// 0.0.0.0 or [::] included, is taken as written. Pure.
func MetricsAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || strings.TrimSpace(host) != "" {
		return listen
	}
	return net.JoinHostPort(MetricsHost, port)
}
