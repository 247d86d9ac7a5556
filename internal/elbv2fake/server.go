// Package elbv2fake is an in-process AWS endpoint for ELBv2 target groups and their tags, EC2 VPCs, STS
// AssumeRole, RDS cluster and instance membership, and the tagging API's GetResources.
//
// It speaks the real wire protocols (awsQuery for ELBv2, STS and RDS, ec2query for EC2, JSON 1.1 for the tagging
// API), so the unmodified aws-sdk-go-v2 clients work against it: point them at URL() with BaseEndpoint or
// AWS_ENDPOINT_URL and any static credentials. Unlike moto it mimics the AWS behaviour ipsync depends on:
// targets keyed by IP and port, the in-VPC / AvailabilityZone "all" rule, silent no-op deregistrations,
// initial -> healthy and draining -> gone over time, TooManyTargets, custom cluster endpoints, and with
// Options.Limits AWS's API rate limits. Tests inject faults (throttling, 5xx, resets, slow answers) and read back
// every call. It is a normal package because `ipsync demo` runs it too.
package elbv2fake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	Region    string // default us-east-1; used in ARNs
	AccountID string // default 123456789012; used in ARNs

	HealthyAfter time.Duration // a new target is "initial" this long, then "healthy" (0 = healthy at once)
	DrainFor     time.Duration // a deregistered target is "draining" this long, then gone (0 = gone at once)
	Latency      time.Duration // added to every call; the call is dropped if the client goes away meanwhile
	MaxTargets   int           // targets per group (draining ones count); beyond it RegisterTargets fails TooManyTargets. 0 = no limit
	RDSPageSize  int           // most records per RDS Describe page, fewer than MaxRecords asks (tests of paging); 0 = as asked

	// Now is the clock target states are computed from (default time.Now). Tests pass a fake clock so
	// HealthyAfter and DrainFor pass without sleeping. Latency and Fault.Delay always use real time.
	Now func() time.Time

	// Limits enforces AWS's API rate limits (see PublishedLimits); nil = unlimited.
	Limits *Limits
}

// Call is one request the server received. Code is filled in when the answer is decided, before the
// client can see it.
type Call struct {
	Action      string     // e.g. "RegisterTargets"
	Params      url.Values // the whole form, including Action and Version
	Code        string     // the error code answered, CodeConnectionReset, CodeClientGone, or "" on success
	At          time.Time  // arrival, by Options.Now
	Region      string     // from the SigV4 credential scope; "" if unsigned
	AccessKeyID string     // from the SigV4 credential scope; shows whether an assumed role signed the call
}

// TargetIPs returns the target addresses a call named in Targets.member.N.Id (RegisterTargets,
// DeregisterTargets, a filtered DescribeTargetHealth), in order.
func (c Call) TargetIPs() []netip.Addr {
	var out []netip.Addr
	for i := 1; ; i++ {
		id := c.Params.Get(fmt.Sprintf("Targets.member.%d.Id", i))
		if id == "" {
			return out
		}
		if a, err := netip.ParseAddr(id); err == nil {
			out = append(out, a)
		}
	}
}

// Codes recorded in Call.Code for calls that got no error answer.
const (
	CodeConnectionReset = "ConnectionReset" // a Fault with CloseConn (and no Code of its own) reset the connection
	CodeClientGone      = "ClientGone"      // the client went away (deadline, cancel), or Close ran, before the answer
)

// Fault makes one call fail. Zero fields do nothing, so Fault{Delay: d} is just a slow success.
type Fault struct {
	Status    int           // HTTP status of the error answer; 0 with a Code = 400
	Code      string        // error code, e.g. "Throttling"; "" with a Status = a code matching the status
	Message   string        // default: the code, marked as injected
	Delay     time.Duration // sleep before answering (real time); if the client gives up first, nothing is answered
	CloseConn bool          // reset the TCP connection instead of answering
	Applied   bool          // the call takes effect before the fault: the change is made, the answer is lost
	// NotApplied is the converse of Applied: the call is answered as a success but makes no change, as a
	// RegisterTargets that AWS accepted and never carried out. For RegisterTargets and DeregisterTargets.
	NotApplied bool
	// DuplicateRows makes a DescribeTargetHealth answer list every target twice.
	DuplicateRows bool
}

// Server is the fake endpoint. All methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *http.Server
	url  string
	done chan struct{} // closed by Close: wakes handlers sleeping in Latency or Delay
	wg   sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	seq     uint64
	groups  []*group // creation order
	vpcs    []*vpc   // creation order
	calls   []*Call
	faultFn func(action string, params url.Values) *Fault
	queued  []*queuedFault

	// RDS state, by lower-case identifier; guarded by mu.
	dbClusters  map[string]*dbCluster
	dbInstances map[string]*dbInstance

	limits *limiter // nil = no rate limits
}

type queuedFault struct {
	action string // "" = any
	left   int
	fault  Fault
}

// New starts a server on 127.0.0.1 with a free port.
func New(opts Options) (*Server, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HealthyAfter < 0 || opts.DrainFor < 0 || opts.Latency < 0 || opts.MaxTargets < 0 || opts.RDSPageSize < 0 {
		return nil, errors.New("elbv2fake: HealthyAfter, DrainFor, Latency, MaxTargets and RDSPageSize must not be negative")
	}
	if err := opts.Limits.check(); err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("elbv2fake: listen on 127.0.0.1: %w", err)
	}
	s := &Server{opts: opts, url: "http://" + ln.Addr().String(), done: make(chan struct{}), limits: newLimiter(opts.Limits)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }() // returns http.ErrServerClosed on Close
	return s, nil
}

// URL is the endpoint for BaseEndpoint / AWS_ENDPOINT_URL, e.g. "http://127.0.0.1:40123".
func (s *Server) URL() string { return s.url }

// Close stops the server: connections are closed, calls sleeping in Latency or Delay end at once,
// and Close returns when every handler has returned.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// Calls returns every request so far, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = *c
		out[i].Params = cloneValues(c.Params)
	}
	return out
}

// MutatingCalls returns the calls that change a target group, failed ones included: RegisterTargets,
// DeregisterTargets, and AddTags and RemoveTags (the ownership record).
func (s *Server) MutatingCalls() []Call {
	var out []Call
	for _, c := range s.Calls() {
		switch c.Action {
		case "RegisterTargets", "DeregisterTargets", "AddTags", "RemoveTags":
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the calls recorded so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// SetFault installs fn, asked on every call (after FailNext faults) whether that call fails; nil clears it.
// fn may run concurrently for concurrent calls.
func (s *Server) SetFault(fn func(action string, params url.Values) *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultFn = fn
}

// FailNext makes the next n calls of action ("" = any action) fail with f.
func (s *Server) FailNext(action string, n int, f Fault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued = append(s.queued, &queuedFault{action: action, left: n, fault: f})
}

// takeQueued returns the FailNext fault for this call, if any. Called with s.mu held, in arrival order,
// so FailNext counts follow the order of Calls.
func (s *Server) takeQueued(action string) *Fault {
	for i, q := range s.queued {
		if q.action != "" && q.action != action {
			continue
		}
		f := q.fault
		if q.left--; q.left == 0 {
			s.queued = append(s.queued[:i], s.queued[i+1:]...)
		}
		return &f
	}
	return nil
}

func (s *Server) now() time.Time { return s.opts.Now() }

// enter registers a running handler; false once Close has begun (so wg.Add never races wg.Wait).
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// nextID returns a new number for request IDs and resource IDs. Called with s.mu held.
func (s *Server) nextID() uint64 {
	s.seq++
	return s.seq
}

// ServeHTTP answers one AWS call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "elbv2fake: server is closing", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()

	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	parseErr := r.ParseForm()
	form := r.Form
	if target := r.Header.Get("X-Amz-Target"); target != "" { // the JSON protocol (tagging API)
		form, parseErr = jsonForm(r, target)
	}
	action, version := form.Get("Action"), form.Get("Version")
	region, akid := credentialScope(r.Header.Get("Authorization"))

	s.mu.Lock()
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012x", s.nextID())
	call := &Call{Action: action, Params: cloneValues(form), At: s.now(), Region: region, AccessKeyID: akid}
	s.calls = append(s.calls, call)
	var fault *Fault
	if parseErr == nil {
		fault = s.takeQueued(action)
	}
	if fault == nil && parseErr == nil {
		fault = s.throttle(version, action, region)
	}
	fn := s.faultFn
	s.mu.Unlock()
	if fault == nil && fn != nil && parseErr == nil {
		if f := fn(action, cloneValues(form)); f != nil {
			c := *f // the caller may reuse f
			fault = &c
		}
	}

	record := func(code string) {
		s.mu.Lock()
		call.Code = code
		s.mu.Unlock()
	}
	s.answer(w, r, reqID, parseErr, action, version, akid, form, fault, record)
}

// answer writes the response. It calls record with the outcome before the client can see it, so a
// client that got its answer always finds the call's Code in Calls.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, reqID string, parseErr error,
	action, version, akid string, form url.Values, fault *Fault, record func(code string)) {
	w.Header().Set("x-amzn-RequestId", reqID)
	ctx := r.Context()
	failWith := func(svc *service, e *apiError) {
		record(e.code)
		writeError(w, svc, reqID, e)
	}
	abandon := func() {
		// Returning without writing would send an empty 200, which the SDK reads as success.
		record(CodeClientGone)
		resetConn(w)
	}
	if !s.sleep(ctx, s.opts.Latency) {
		abandon()
		return
	}
	svc := serviceFor(version)
	switch {
	case parseErr != nil:
		failWith(svc, errorf(http.StatusBadRequest, "MalformedQueryString",
			"cannot read the form body: %v; send a form-encoded POST as the AWS SDK does", parseErr))
		return
	case svc == nil:
		failWith(nil, errorf(http.StatusBadRequest, "InvalidAction",
			"Version %q of action %q is not served here; this fake serves ELBv2 %s, EC2 %s, STS %s and RDS %s",
			version, action, elbVersion, ec2Version, stsVersion, rdsVersion))
		return
	case akid == "":
		failWith(svc, errorf(http.StatusForbidden, "MissingAuthenticationToken",
			"Request is missing Authentication Token; configure static credentials (e.g. test/test) in the SDK"))
		return
	}

	var res response
	applied := false
	if fault != nil && fault.Applied {
		res, applied = s.dispatch(svc, action, form), true
	}
	if fault != nil {
		if !s.sleep(ctx, fault.Delay) {
			abandon()
			return
		}
		if fault.CloseConn {
			record(cmp.Or(fault.Code, CodeConnectionReset))
			if resetConn(w) {
				return
			}
		}
		if fault.Status != 0 || fault.Code != "" {
			failWith(svc, faultError(fault))
			return
		}
	}
	switch {
	case fault != nil && fault.NotApplied:
		res = success(nil) // the answer of RegisterTargets and DeregisterTargets
	case !applied:
		res = s.dispatch(svc, action, form)
	}
	if th, ok := res.body.(targetHealthResult); ok && fault != nil && fault.DuplicateRows {
		th.TargetHealthDescriptions = append(th.TargetHealthDescriptions, th.TargetHealthDescriptions...)
		res.body = th
	}
	if res.err != nil {
		failWith(svc, res.err)
		return
	}
	body, err := encodeResult(svc, action, reqID, res.body)
	if err != nil { // a bug in this package, not the caller's: say so in the AWS error shape
		failWith(svc, errorf(http.StatusInternalServerError, "InternalFailure", "elbv2fake: encoding the answer: %v", err))
		return
	}
	record("")
	w.Header().Set("Content-Type", svc.contentType())
	_, _ = w.Write(body)
}

// sleep waits d of real time; false if the client went away or the server is closing.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// resetConn closes the client's connection with a TCP RST, which the SDK sees as "connection reset by peer".
func resetConn(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST instead of FIN
	}
	_ = conn.Close()
	return true
}

func faultError(f *Fault) *apiError {
	status, code := f.Status, f.Code
	if status == 0 {
		status = http.StatusBadRequest
	}
	if code == "" {
		switch {
		case status == http.StatusServiceUnavailable:
			code = "ServiceUnavailable"
		case status >= 500:
			code = "InternalFailure"
		default:
			code = "UnknownError"
		}
	}
	msg := f.Message
	if msg == "" {
		msg = code + " (injected by elbv2fake)"
	}
	return &apiError{status: status, code: code, msg: msg}
}

// credentialScope extracts region and access key ID from a SigV4 Authorization header.
func credentialScope(auth string) (region, akid string) {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "", ""
	}
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(strings.TrimSpace(scope), "/") // AKID/date/region/service/aws4_request
	if len(parts) < 3 {
		return "", parts[0]
	}
	return parts[2], parts[0]
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
