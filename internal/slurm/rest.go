package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// The REST backend speaks slurmrestd's data parsers v0.0.42 to v0.0.45 (Slurm 24.11 serves
// v0.0.40–v0.0.42, 26.05 v0.0.42–v0.0.45), one code path for all: the objects it reads and
// writes (node, node update message, ping, error) have the same fields in each, as the
// clients SchedMD's OpenAPI generator makes for them show
// (github.com/SlinkyProject/slurm-client/api/v0042–v0045; rest_test.go checks the state
// names against every one of them). It picks the newest parser both sides speak from
// slurmrestd's own description (GET /openapi/v3) on first use, and sends every request with
// the current token, so it uses plain HTTP rather than a generated client per version.

// Slurm error numbers (slurm/slurm_errno.h) the REST backend maps.
const (
	eslurmInvalidNodeName  = 2018 // ESLURM_INVALID_NODE_NAME
	slurmProtocolAuthError = 1007 // SLURM_PROTOCOL_AUTHENTICATION_ERROR
)

// RESTParsers are the slurmrestd data parsers the REST backend speaks, newest first.
var RESTParsers = []string{"v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42"}

// ErrRESTUnsupported is wrapped by the error of a slurmrestd that serves none of
// RESTParsers with a node update endpoint (Slurm older than 24.11, e.g. 22.05's
// v0.0.36–v0.0.38, which cannot update nodes at all): use the scontrol backend there.
var ErrRESTUnsupported = errors.New("slurmrestd speaks no data parser this backend supports")

// restUpdateParallel bounds concurrent node updates (one request per node).
const restUpdateParallel = 8

// RESTOptions configures the slurmrestd backend.
type RESTOptions struct {
	// URL is http://host:port, https://host:port or unix:///path/to.sock.
	URL string
	// TokenFile holds the JWT sent as X-SLURM-USER-TOKEN; it is re-read
	// when it changes. Required unless URL is a unix socket served with
	// rest_auth/local.
	TokenFile string
	// User is sent as X-SLURM-USER-NAME when set.
	User string
	// Timeout bounds each request. Default DefaultTimeout.
	Timeout time.Duration
	// Parser is the data parser to speak, one of RESTParsers; "" = the newest one
	// slurmrestd serves too, found on first use (Negotiate).
	Parser string
	// Transport replaces the HTTP transport (tests); nil builds one that
	// dials URL directly and never uses a proxy.
	Transport http.RoundTripper
}

// REST is the slurmrestd backend. Safe for concurrent use.
type REST struct {
	hc      *http.Client
	server  string     // scheme://host[:port][/path] requests go to
	token   *tokenFile // nil: no token header
	user    string
	timeout time.Duration
	where   string // URL for messages

	mu     sync.Mutex
	parser string // "" until negotiated
}

var _ Client = (*REST)(nil)

// NewREST validates o and builds the backend. It does not contact
// slurmrestd or read the token yet; it does not block.
func NewREST(o RESTOptions) (*REST, error) {
	if o.URL == "" {
		return nil, errors.New("slurmrestd: no URL configured (slurm.rest_url)")
	}
	if o.Parser != "" && !slices.Contains(RESTParsers, o.Parser) {
		return nil, fmt.Errorf("slurmrestd data parser %q: want one of %s", o.Parser, strings.Join(RESTParsers, ", "))
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("slurmrestd URL %q: %w", o.URL, err)
	}
	var server string
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("slurmrestd URL %q: no host", o.URL)
		}
		server = strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
	case "unix":
		sock := u.Path
		if u.Host != "" || sock == "" {
			return nil, fmt.Errorf("slurmrestd URL %q: want unix:///absolute/path.sock", o.URL)
		}
		server = "http://slurmrestd"
		var d net.Dialer
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
	default:
		return nil, fmt.Errorf("slurmrestd URL %q: scheme must be http, https or unix", o.URL)
	}
	if o.TokenFile == "" && u.Scheme != "unix" {
		return nil, fmt.Errorf("slurmrestd %s: no token file configured (slurm.token_file)", o.URL)
	}
	rt := o.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // only ever talk to slurmrestd itself
		if dial != nil {
			tr.DialContext = dial
		}
		tr.MaxIdleConnsPerHost = restUpdateParallel
		rt = tr
	}
	r := &REST{hc: &http.Client{Transport: rt}, server: server, user: o.User, where: o.URL,
		timeout: o.Timeout, parser: o.Parser}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if o.TokenFile != "" {
		r.token = newTokenFile(o.TokenFile)
	}
	return r, nil
}

// parserPathRE finds the data parser in an OpenAPI path.
var parserPathRE = regexp.MustCompile(`^/slurm/(v[0-9]+\.[0-9]+\.[0-9]+)/`)

// Negotiate returns the data parser the backend speaks: the one set in RESTOptions, or
// the newest of RESTParsers whose node update (POST /slurm/VERSION/node/{node_name})
// slurmrestd describes in GET /openapi/v3, remembered after the first success. A
// slurmrestd with none wraps ErrRESTUnsupported and names the parsers it serves. It blocks
// for one request the first time; idempotent.
func (r *REST) Negotiate(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.parser != "" {
		return r.parser, nil
	}
	const path = "/openapi/v3"
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := r.call(ctx, http.MethodGet, path, nil, &spec); err != nil {
		return "", fmt.Errorf("slurmrestd data parser: %w", err)
	}
	served := map[string]bool{}
	for p := range spec.Paths {
		if m := parserPathRE.FindStringSubmatch(p); m != nil {
			served[m[1]] = true
		}
	}
	for _, v := range RESTParsers {
		if _, ok := spec.Paths["/slurm/"+v+"/node/{node_name}"]["post"]; ok {
			r.parser = v
			return v, nil
		}
	}
	have := slices.Sorted(func(yield func(string) bool) {
		for v := range served {
			if !yield(v) {
				return
			}
		}
	})
	return "", fmt.Errorf("%w: %s serves %s without one of %s with a node update (POST /slurm/VERSION/node/{node_name}; Slurm 24.11 or later): use slurm.backend scontrol",
		ErrRESTUnsupported, r.where, orNone(have), strings.Join(RESTParsers, ", "))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no data parser"
	}
	return "data parsers " + strings.Join(s, ", ")
}

// prefix is /slurm/PARSER, negotiating first when needed.
func (r *REST) prefix(ctx context.Context) (string, error) {
	v, err := r.Negotiate(ctx)
	if err != nil {
		return "", err
	}
	return "/slurm/" + v, nil
}

// RESTErrorEntry is one entry of the "errors" list slurmrestd answers with (the same
// object in every data parser).
type RESTErrorEntry struct {
	Description *string `json:"description,omitempty"`
	Error       *string `json:"error,omitempty"`
	ErrorNumber *int32  `json:"error_number,omitempty"`
	Source      *string `json:"source,omitempty"`
}

// RESTError is a request slurmrestd answered with an error.
type RESTError struct {
	Method, Path string
	Status       int
	Errors       []RESTErrorEntry
}

// Error names the method, path and HTTP status, then Slurm's messages and
// error numbers; it never contains the token.
func (e *RESTError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slurmrestd %s %s: HTTP %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	for _, oe := range e.Errors {
		b.WriteString(": ")
		msg := deref(oe.Description)
		if msg == "" {
			msg = deref(oe.Error)
		} else if er := deref(oe.Error); er != "" && er != msg {
			msg += " (" + er + ")"
		}
		b.WriteString(msg)
		if oe.ErrorNumber != nil {
			fmt.Fprintf(&b, " [slurm error %d]", *oe.ErrorNumber)
		}
	}
	switch {
	case e.hasErrno(slurmProtocolAuthError):
		b.WriteString(" (slurmctld rejected the token: expired, or not signed with its jwt_key?)")
	case e.Status == http.StatusUnauthorized:
		b.WriteString(" (slurmrestd rejected the request: token missing or unreadable?)")
	}
	return b.String()
}

// hasErrno reports whether Slurm answered with error number n.
func (e *RESTError) hasErrno(n int32) bool {
	for _, oe := range e.Errors {
		if oe.ErrorNumber != nil && *oe.ErrorNumber == n {
			return true
		}
	}
	return false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// maxRESTBody bounds what is read of one answer (a node listing of thousands of nodes
// fits).
const maxRESTBody = 64 << 20

// call sends one request (in, when not nil, as the JSON body) bounded by the timeout and
// decodes a 200 answer into out (when not nil). Another status is a *RESTError carrying
// Slurm's errors; a transport error names the endpoint.
func (r *REST) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.do(ctx, method, path, in, out)
	if err == nil {
		return nil
	}
	var re *RESTError
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("slurmrestd %s %s at %s: no answer within %s: %w", method, path, r.where, r.timeout, err)
	}
	return fmt.Errorf("slurmrestd %s %s at %s: %w", method, path, r.where, unwrapURLError(err))
}

func (r *REST) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != nil {
		tok, err := r.token.Get()
		if err != nil {
			return err
		}
		req.Header.Set("X-SLURM-USER-TOKEN", tok)
	}
	if r.user != "" {
		req.Header.Set("X-SLURM-USER-NAME", r.user)
	}
	res, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxRESTBody))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		e := &RESTError{Method: method, Path: path, Status: res.StatusCode}
		var errs struct {
			Errors []RESTErrorEntry `json:"errors"`
		}
		if json.Unmarshal(b, &errs) == nil {
			e.Errors = errs.Errors
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
}

// unwrapURLError drops net/url's repetition of method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// restNode is the part of a node object (v0.0.42–v0.0.45) the backend reads.
type restNode struct {
	Name       string   `json:"name"`
	State      []string `json:"state"`
	Reason     string   `json:"reason"`
	Address    string   `json:"address"`
	Hostname   string   `json:"hostname"`
	Features   []string `json:"features"`
	Active     []string `json:"active_features"`
	Gres       string   `json:"gres"`
	RealMemory int64    `json:"real_memory"`
	Cpus       int      `json:"cpus"`
	Partitions []string `json:"partitions"`
}

// restNodes is the answer of GET /nodes/ and GET /node/{name}.
type restNodes struct {
	Nodes []restNode `json:"nodes"`
}

// Nodes returns the named nodes in the order given, or all nodes when
// names is empty (FUTURE nodes included). Named nodes missing from the
// listing (powered-down CLOUD nodes without PrivateData=cloud) are fetched
// one by one. Unknown names give an error wrapping ErrNodeNotFound,
// returned together with the nodes that were found. Blocks for one request
// (plus one per name missing from the listing, and the negotiation on first
// use); read-only.
func (r *REST) Nodes(ctx context.Context, names ...string) ([]Node, error) {
	if err := validateNames(names); err != nil {
		return nil, fmt.Errorf("slurmrestd nodes: %w", err)
	}
	names = dedupe(names)
	pre, err := r.prefix(ctx)
	if err != nil {
		return nil, err
	}
	path := pre + "/nodes/"
	var res restNodes
	if err := r.call(ctx, http.MethodGet, path+"?flags=FUTURE", nil, &res); err != nil {
		return nil, err
	}
	var all []Node
	for _, n := range res.Nodes {
		all = append(all, fromREST(n))
	}
	if len(names) == 0 {
		return all, nil
	}
	have := make(map[string]bool, len(all))
	for _, n := range all {
		have[n.Name] = true
	}
	var missing []string
	for _, name := range names {
		if have[name] {
			continue
		}
		n, err := r.node(ctx, pre, name)
		switch {
		case errors.Is(err, ErrNodeNotFound):
			missing = append(missing, name)
		case err != nil:
			return nil, err
		default:
			all = append(all, n)
		}
	}
	out, _ := pick(all, names, "")
	if len(missing) > 0 {
		return out, fmt.Errorf("slurmrestd GET %s: %w", path, notFound(missing))
	}
	return out, nil
}

// node fetches one node by name.
func (r *REST) node(ctx context.Context, pre, name string) (Node, error) {
	path := pre + "/node/" + name
	var res restNodes
	if err := r.call(ctx, http.MethodGet, path, nil, &res); err != nil {
		return Node{}, notFoundOr(name, err)
	}
	for _, n := range res.Nodes {
		if n.Name == name {
			return fromREST(n), nil
		}
	}
	return Node{}, fmt.Errorf("slurmrestd GET %s: %w", path, notFound([]string{name}))
}

// notFoundOr maps Slurm's "invalid node name" answers to ErrNodeNotFound.
func notFoundOr(name string, err error) error {
	var re *RESTError
	if errors.As(err, &re) && (re.Status == http.StatusNotFound || re.hasErrno(eslurmInvalidNodeName)) {
		return fmt.Errorf("%w: %w", notFound([]string{name}), err)
	}
	return err
}

// fromREST converts a node object.
func fromREST(n restNode) Node {
	base, flags := splitState(n.State)
	return Node{
		Name:           n.Name,
		State:          base,
		Flags:          flags,
		Reason:         n.Reason,
		Addr:           n.Address,
		Hostname:       n.Hostname,
		Features:       nonEmpty(n.Features),
		ActiveFeatures: nonEmpty(n.Active),
		Gres:           n.Gres,
		RealMemoryMB:   n.RealMemory,
		CPUs:           n.Cpus,
		Partitions:     nonEmpty(n.Partitions),
	}
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// restStates maps an UpdateState to the node update message's state flags, as scontrol
// does (POWER_DOWN_ASAP = POWER_DOWN+POWER_DRAIN, POWER_DOWN_FORCE =
// POWER_DOWN+POWERED_DOWN; v0.0.45 also has POWER_DOWN_ASAP and POWER_DOWN_FORCE as names,
// the combinations are valid in every parser).
var restStates = map[UpdateState][]string{
	SetDown:           {"DOWN"},
	SetDrain:          {"DRAIN"},
	SetResume:         {"RESUME"},
	SetIdle:           {"IDLE"},
	SetPowerDown:      {"POWER_DOWN"},
	SetPowerDownAsap:  {"POWER_DOWN", "POWER_DRAIN"},
	SetPowerDownForce: {"POWER_DOWN", "POWERED_DOWN"},
	SetPowerUp:        {"POWER_UP"},
	SetUndrain:        {"UNDRAIN"},
}

// restUpdate is the node update message (v0.0.42–v0.0.45) the backend sends.
type restUpdate struct {
	Address  []string `json:"address,omitempty"`
	Hostname []string `json:"hostname,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	State    []string `json:"state,omitempty"`
}

// updateMsg builds the request body for u.
func updateMsg(u NodeUpdate) restUpdate {
	m := restUpdate{State: restStates[u.State], Reason: u.Reason}
	if u.Addr != "" {
		m.Address = []string{u.Addr}
	}
	if u.Hostname != "" {
		m.Hostname = []string{u.Hostname}
	}
	return m
}

// Update applies u to each named node with POST /slurm/PARSER/node/{name},
// up to 8 requests at a time; the failures of all nodes are joined. Empty
// fields are left alone; an update with no field set does nothing.
// Idempotent for a given u, except that Slurm refuses RESUME for a node
// that is neither DOWN nor drained (error 2028, "Invalid node state
// specified"). Blocks for one request per node (and the negotiation on
// first use).
func (r *REST) Update(ctx context.Context, names []string, u NodeUpdate) error {
	if err := validateUpdate(names, u); err != nil {
		return fmt.Errorf("slurmrestd %w", err)
	}
	if emptyUpdate(u) {
		return nil
	}
	pre, err := r.prefix(ctx)
	if err != nil {
		return err
	}
	names = dedupe(names)
	body := updateMsg(u)
	errs := make([]error, len(names))
	sem := make(chan struct{}, restUpdateParallel)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = notFoundOr(name, r.call(ctx, http.MethodPost, pre+"/node/"+name, body, nil))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Ping asks slurmrestd to ping the controllers and succeeds when one
// responds. Blocks for one request (and the negotiation on first use);
// read-only.
func (r *REST) Ping(ctx context.Context) error {
	pre, err := r.prefix(ctx)
	if err != nil {
		return err
	}
	path := pre + "/ping/"
	var res struct {
		Pings []struct {
			Hostname   string `json:"hostname"`
			Pinged     string `json:"pinged"` // v0.0.42–v0.0.44
			Status     string `json:"status"` // v0.0.45
			Responding bool   `json:"responding"`
		} `json:"pings"`
	}
	if err := r.call(ctx, http.MethodGet, path, nil, &res); err != nil {
		return err
	}
	var seen []string
	for _, p := range res.Pings {
		if p.Responding || p.Pinged == "UP" {
			return nil
		}
		seen = append(seen, strings.TrimSpace(p.Hostname+" "+p.Pinged+p.Status))
	}
	return fmt.Errorf("slurmrestd GET %s: no controller responding (%s)", path, strings.Join(seen, ", "))
}
