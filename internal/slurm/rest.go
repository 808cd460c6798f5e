package slurm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	api "github.com/SlinkyProject/slurm-client/api/v0042"
)

// The REST backend speaks slurmrestd's data parser v0.0.42 (Slurm 24.11
// and later) through SchedMD's generated client in
// github.com/SlinkyProject/slurm-client/api/v0042. The higher-level
// slurm-client Client takes one token for its lifetime and reports errors
// as bare status texts; the generated client lets every request carry the
// current token and exposes status codes and Slurm error numbers, which
// the error mapping below needs.

// Slurm error numbers (slurm/slurm_errno.h) the REST backend maps.
const (
	eslurmInvalidNodeName  = 2018 // ESLURM_INVALID_NODE_NAME
	slurmProtocolAuthError = 1007 // SLURM_PROTOCOL_AUTHENTICATION_ERROR
)

// restPathPrefix is the data parser path prefix used for messages.
const restPathPrefix = "/slurm/v0.0.42"

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
	// Transport replaces the HTTP transport (tests); nil builds one that
	// dials URL directly and never uses a proxy.
	Transport http.RoundTripper
}

// REST is the slurmrestd backend. Safe for concurrent use.
type REST struct {
	api     *api.ClientWithResponses
	token   *tokenFile // nil: no token header
	user    string
	timeout time.Duration
	where   string // URL for messages
}

var _ Client = (*REST)(nil)

// NewREST validates o and builds the backend. It does not contact
// slurmrestd or read the token yet; it does not block.
func NewREST(o RESTOptions) (*REST, error) {
	if o.URL == "" {
		return nil, errors.New("slurmrestd: no URL configured (slurm.rest_url)")
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
	r := &REST{user: o.User, where: o.URL, timeout: o.Timeout}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if o.TokenFile != "" {
		r.token = newTokenFile(o.TokenFile)
	}
	c, err := api.NewClientWithResponses(server,
		api.WithHTTPClient(&http.Client{Transport: rt}),
		api.WithRequestEditorFn(r.authorize))
	if err != nil {
		return nil, fmt.Errorf("slurmrestd client for %s: %w", o.URL, err)
	}
	r.api = c
	return r, nil
}

// authorize adds the user name and the current token to a request.
func (r *REST) authorize(_ context.Context, req *http.Request) error {
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
	return nil
}

// RESTError is a request slurmrestd answered with an error.
type RESTError struct {
	Method, Path string
	Status       int
	Errors       []api.V0042OpenapiError
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

// call runs one request bounded by the timeout and names the endpoint in a
// transport error.
func (r *REST) call(ctx context.Context, method, path string, do func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := do(ctx)
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

// unwrapURLError drops net/url's repetition of method and URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// check turns a non-200 answer into a *RESTError.
func check(method, path string, status int, errs *api.V0042OpenapiErrors) error {
	if status == http.StatusOK {
		return nil
	}
	e := &RESTError{Method: method, Path: path, Status: status}
	if errs != nil {
		e.Errors = *errs
	}
	return e
}

// Nodes returns the named nodes in the order given, or all nodes when
// names is empty (FUTURE nodes included). Named nodes missing from the
// listing (powered-down CLOUD nodes without PrivateData=cloud) are fetched
// one by one. Unknown names give an error wrapping ErrNodeNotFound,
// returned together with the nodes that were found. Blocks for one request
// (plus one per name missing from the listing); read-only.
func (r *REST) Nodes(ctx context.Context, names ...string) ([]Node, error) {
	if err := validateNames(names); err != nil {
		return nil, fmt.Errorf("slurmrestd nodes: %w", err)
	}
	names = dedupe(names)
	const path = restPathPrefix + "/nodes/"
	var all []Node
	err := r.call(ctx, http.MethodGet, path, func(ctx context.Context) error {
		flags := api.SlurmV0042GetNodesParamsFlagsFUTURE
		res, err := r.api.SlurmV0042GetNodesWithResponse(ctx, &api.SlurmV0042GetNodesParams{Flags: &flags})
		if err != nil {
			return err
		}
		if res.JSON200 == nil {
			var errs *api.V0042OpenapiErrors
			if res.JSONDefault != nil {
				errs = res.JSONDefault.Errors
			}
			return check(http.MethodGet, path, nonOK(res.StatusCode()), errs)
		}
		for _, n := range res.JSON200.Nodes {
			all = append(all, fromREST(n))
		}
		return nil
	})
	if err != nil {
		return nil, err
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
		n, err := r.node(ctx, name)
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
func (r *REST) node(ctx context.Context, name string) (Node, error) {
	path := restPathPrefix + "/node/" + name
	var out Node
	err := r.call(ctx, http.MethodGet, path, func(ctx context.Context) error {
		res, err := r.api.SlurmV0042GetNodeWithResponse(ctx, name, &api.SlurmV0042GetNodeParams{})
		if err != nil {
			return err
		}
		if res.JSON200 == nil {
			var errs *api.V0042OpenapiErrors
			if res.JSONDefault != nil {
				errs = res.JSONDefault.Errors
			}
			return notFoundOr(name, check(http.MethodGet, path, nonOK(res.StatusCode()), errs))
		}
		for _, n := range res.JSON200.Nodes {
			if deref(n.Name) == name {
				out = fromREST(n)
				return nil
			}
		}
		return fmt.Errorf("slurmrestd GET %s: %w", path, notFound([]string{name}))
	})
	return out, err
}

// nonOK keeps a status that produced no 200 body from reading as success.
func nonOK(status int) int {
	if status == http.StatusOK {
		return http.StatusBadGateway
	}
	return status
}

// notFoundOr maps Slurm's "invalid node name" answers to ErrNodeNotFound.
func notFoundOr(name string, err error) error {
	var re *RESTError
	if errors.As(err, &re) && (re.Status == http.StatusNotFound || re.hasErrno(eslurmInvalidNodeName)) {
		return fmt.Errorf("%w: %w", notFound([]string{name}), err)
	}
	return err
}

// fromREST converts a v0.0.42 node.
func fromREST(n api.V0042Node) Node {
	var words []string
	for _, s := range deref(n.State) {
		words = append(words, string(s))
	}
	base, flags := splitState(words)
	return Node{
		Name:         deref(n.Name),
		State:        base,
		Flags:        flags,
		Reason:       deref(n.Reason),
		Addr:         deref(n.Address),
		Hostname:     deref(n.Hostname),
		Features:     nonEmpty(deref(n.Features)),
		Gres:         deref(n.Gres),
		RealMemoryMB: deref(n.RealMemory),
		CPUs:         int(deref(n.Cpus)),
		Partitions:   nonEmpty(deref(n.Partitions)),
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

// restStates maps an UpdateState to v0.0.42 state flags, as scontrol does
// (POWER_DOWN_ASAP = POWER_DOWN+POWER_DRAIN, POWER_DOWN_FORCE =
// POWER_DOWN+POWERED_DOWN).
var restStates = map[UpdateState][]api.V0042UpdateNodeMsgState{
	SetDown:           {api.V0042UpdateNodeMsgStateDOWN},
	SetDrain:          {api.V0042UpdateNodeMsgStateDRAIN},
	SetResume:         {api.V0042UpdateNodeMsgStateRESUME},
	SetIdle:           {api.V0042UpdateNodeMsgStateIDLE},
	SetPowerDown:      {api.V0042UpdateNodeMsgStatePOWERDOWN},
	SetPowerDownAsap:  {api.V0042UpdateNodeMsgStatePOWERDOWN, api.V0042UpdateNodeMsgStatePOWERDRAIN},
	SetPowerDownForce: {api.V0042UpdateNodeMsgStatePOWERDOWN, api.V0042UpdateNodeMsgStatePOWEREDDOWN},
	SetPowerUp:        {api.V0042UpdateNodeMsgStatePOWERUP},
	SetUndrain:        {api.V0042UpdateNodeMsgStateUNDRAIN},
}

// updateMsg builds the request body for u.
func updateMsg(u NodeUpdate) api.V0042UpdateNodeMsg {
	var m api.V0042UpdateNodeMsg
	if st, ok := restStates[u.State]; ok {
		m.State = &st
	}
	if u.Reason != "" {
		m.Reason = &u.Reason
	}
	if u.Addr != "" {
		m.Address = &api.V0042HostlistString{u.Addr}
	}
	if u.Hostname != "" {
		m.Hostname = &api.V0042HostlistString{u.Hostname}
	}
	return m
}

// Update applies u to each named node with POST /slurm/v0.0.42/node/{name},
// up to 8 requests at a time; the failures of all nodes are joined. Empty
// fields are left alone; an update with no field set does nothing.
// Idempotent for a given u, except that Slurm refuses RESUME for a node
// that is neither DOWN nor drained (error 2028, "Invalid node state
// specified"). Blocks for one request per node.
func (r *REST) Update(ctx context.Context, names []string, u NodeUpdate) error {
	if err := validateUpdate(names, u); err != nil {
		return fmt.Errorf("slurmrestd %w", err)
	}
	if emptyUpdate(u) {
		return nil
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
			errs[i] = r.updateOne(ctx, name, body)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *REST) updateOne(ctx context.Context, name string, body api.V0042UpdateNodeMsg) error {
	path := restPathPrefix + "/node/" + name
	return r.call(ctx, http.MethodPost, path, func(ctx context.Context) error {
		res, err := r.api.SlurmV0042PostNodeWithResponse(ctx, name, body)
		if err != nil {
			return err
		}
		if res.StatusCode() == http.StatusOK {
			return nil
		}
		var errs *api.V0042OpenapiErrors
		if res.JSONDefault != nil {
			errs = res.JSONDefault.Errors
		}
		return notFoundOr(name, check(http.MethodPost, path, res.StatusCode(), errs))
	})
}

// Ping asks slurmrestd to ping the controllers and succeeds when one
// responds. Blocks for one request; read-only.
func (r *REST) Ping(ctx context.Context) error {
	const path = restPathPrefix + "/ping/"
	return r.call(ctx, http.MethodGet, path, func(ctx context.Context) error {
		res, err := r.api.SlurmV0042GetPingWithResponse(ctx)
		if err != nil {
			return err
		}
		if res.JSON200 == nil {
			var errs *api.V0042OpenapiErrors
			if res.JSONDefault != nil {
				errs = res.JSONDefault.Errors
			}
			return check(http.MethodGet, path, nonOK(res.StatusCode()), errs)
		}
		var seen []string
		for _, p := range res.JSON200.Pings {
			if p.Responding || deref(p.Pinged) == "UP" {
				return nil
			}
			seen = append(seen, deref(p.Hostname)+" "+deref(p.Pinged))
		}
		return fmt.Errorf("slurmrestd GET %s: no controller responding (%s)", path, strings.Join(seen, ", "))
	})
}
