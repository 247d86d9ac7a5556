package elbv2fake

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Target states as DescribeTargetHealth reports them.
const (
	StateInitial           = "initial"
	StateHealthy           = "healthy"
	StateUnhealthy         = "unhealthy"
	StateUnhealthyDraining = "unhealthy.draining"
	StateUnused            = "unused"
	StateDraining          = "draining"
	StateUnavailable       = "unavailable"
)

// TargetGroupSpec describes a target group made with Server.CreateTargetGroup.
type TargetGroupSpec struct {
	Name          string // default "tg-N"; 1-32 letters, digits, hyphens
	Port          int32  // the default port of RegisterTargets; 1-65535
	Protocol      string // default "TCP"
	VPCID         string // default: a new VPC with no CIDR blocks; an unknown ID is created with none (see AddVPC)
	TargetType    string // default "ip" (the only type RegisterTargets accepts)
	IPAddressType string // "ipv4" (default) or "ipv6"
}

// TargetState is one registered target and its current health state.
type TargetState struct {
	IP               netip.Addr
	Port             int32
	AvailabilityZone string // "" unless the registration named one ("all" for addresses outside the VPC)
	State            string // one of the State* constants
}

type group struct {
	arn, name, protocol, vpcID, targetType, ipType string
	port                                           int32
	targets                                        []*target // registration order, as AWS lists them
	tags                                           map[string]string
}

type target struct {
	ip           netip.Addr
	port         int32
	az           string
	registered   time.Time // start of "initial"
	draining     bool
	deregistered time.Time // start of "draining"
	forced       string    // SetHealth override; "" = computed from the timestamps
}

// dispatch runs one action and returns its answer. Each action holds s.mu while it reads or changes state.
func (s *Server) dispatch(svc *service, action string, form url.Values) response {
	switch svc.name {
	case "elbv2":
		switch action {
		case "DescribeTargetGroups":
			return s.describeTargetGroups(form)
		case "DescribeTargetHealth":
			return s.describeTargetHealth(form)
		case "RegisterTargets":
			return s.registerTargets(form)
		case "DeregisterTargets":
			return s.deregisterTargets(form)
		case "CreateTargetGroup":
			return s.createTargetGroupAction(form)
		case "DeleteTargetGroup":
			return s.deleteTargetGroup(form)
		case "AddTags", "RemoveTags", "DescribeTags":
			return s.tagAction(action, form)
		}
	case "ec2":
		switch action {
		case "DescribeVpcs":
			return s.describeVpcs(form)
		case "CreateVpc":
			return s.createVpcAction(form)
		}
	case "sts":
		if action == "AssumeRole" {
			return s.assumeRole(form)
		}
	case "rds":
		return s.dispatchRDS(action, form)
	case "tagging":
		if action == "GetResources" {
			return s.getResources(form)
		}
	}
	return invalidAction(action)
}

// ---- Go helpers ----

// CreateTargetGroup makes a target group and returns its ARN. If a group of that name exists its ARN is
// returned (AWS's CreateTargetGroup is idempotent the same way; differing settings are not checked here).
// It returns "" for an invalid spec (name, port, type), which later calls then report as TargetGroupNotFound.
func (s *Server) CreateTargetGroup(spec TargetGroupSpec) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("tg-%d", len(s.groups)+1)
	}
	if g := s.groupByName(spec.Name); g != nil {
		return g.arn
	}
	spec.Protocol = cmp.Or(spec.Protocol, "TCP")
	spec.TargetType = cmp.Or(spec.TargetType, "ip")
	spec.IPAddressType = cmp.Or(spec.IPAddressType, "ipv4")
	if spec.VPCID == "" {
		spec.VPCID = s.newVPCID()
	}
	if s.vpc(spec.VPCID) == nil {
		s.vpcs = append(s.vpcs, &vpc{id: spec.VPCID})
	}
	g, err := s.createGroup(spec)
	if err != nil {
		return ""
	}
	return g.arn
}

// Targets returns the group's targets that are not gone, sorted by IP then port; nil for an unknown ARN.
func (s *Server) Targets(arn string) []TargetState {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(arn)
	if g == nil {
		return nil
	}
	now := s.now()
	var out []TargetState
	for _, t := range s.live(g, now) {
		out = append(out, TargetState{IP: t.ip, Port: t.port, AvailabilityZone: t.az, State: s.state(t, now)})
	}
	slices.SortFunc(out, func(a, b TargetState) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
	})
	return out
}

// SetTargets replaces the group's targets, e.g. to seed targets ipsync did not register. No VPC or limit
// checks. Port 0 = the group's port. State "" or "healthy" = healthy now; "initial" = just registered (healthy
// after HealthyAfter); "draining" = just deregistered (gone after DrainFor); any other state is forced as
// with SetHealth.
func (s *Server) SetTargets(arn string, ts ...TargetState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(arn)
	if g == nil {
		return fmt.Errorf("elbv2fake: SetTargets: no target group %q; create it first", arn)
	}
	seeded := make([]*target, 0, len(ts))
	for _, ts := range ts {
		t, err := s.seed(g, ts)
		if err != nil {
			return fmt.Errorf("elbv2fake: SetTargets: %w", err)
		}
		seeded = put(seeded, t)
	}
	g.targets = seeded
	return nil
}

// AddTarget adds one target (or replaces the one with the same IP and port) as SetTargets does.
func (s *Server) AddTarget(arn string, ts TargetState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(arn)
	if g == nil {
		return fmt.Errorf("elbv2fake: AddTarget: no target group %q; create it first", arn)
	}
	t, err := s.seed(g, ts)
	if err != nil {
		return fmt.Errorf("elbv2fake: AddTarget: %w", err)
	}
	g.targets = put(g.targets, t)
	return nil
}

// put adds t to ts, or puts it in the place of the target with the same IP and port.
func put(ts []*target, t *target) []*target {
	if i := slices.IndexFunc(ts, func(o *target) bool { return o.ip == t.ip && o.port == t.port }); i >= 0 {
		ts[i] = t
		return ts
	}
	return append(ts, t)
}

// SetHealth forces the state DescribeTargetHealth reports for a registered target (e.g. unhealthy, unused,
// unavailable) until the next SetHealth, registration or deregistration of it. State "" goes back to the
// computed state. A forced draining or unhealthy.draining target counts as draining: registering it again
// makes it initial.
func (s *Server) SetHealth(arn string, ip netip.Addr, port int32, state string) error {
	if state != "" && !validState(state) {
		return fmt.Errorf("elbv2fake: SetHealth: unknown state %q; use initial, healthy, unhealthy, "+
			"unhealthy.draining, unused, draining or unavailable", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.group(arn)
	if g == nil {
		return fmt.Errorf("elbv2fake: SetHealth: no target group %q", arn)
	}
	s.live(g, s.now())
	t := find(g, ip, port)
	if t == nil {
		return fmt.Errorf("elbv2fake: SetHealth: %s:%d is not registered in %s", ip, port, arn)
	}
	t.forced = state
	return nil
}

func (s *Server) seed(g *group, ts TargetState) (*target, error) {
	if !ts.IP.IsValid() {
		return nil, fmt.Errorf("target has no IP address")
	}
	if ts.Port == 0 {
		ts.Port = g.port
	}
	now := s.now()
	t := &target{ip: ts.IP.Unmap(), port: ts.Port, az: ts.AvailabilityZone, registered: now.Add(-s.opts.HealthyAfter)}
	switch ts.State {
	case "", StateHealthy:
	case StateInitial:
		t.registered = now
	case StateDraining:
		t.draining, t.deregistered = true, now
	default:
		if !validState(ts.State) {
			return nil, fmt.Errorf("unknown state %q for %s", ts.State, ts.IP)
		}
		t.forced = ts.State
	}
	return t, nil
}

// ---- state ----

func validState(st string) bool {
	switch st {
	case StateInitial, StateHealthy, StateUnhealthy, StateUnhealthyDraining, StateUnused, StateDraining, StateUnavailable:
		return true
	}
	return false
}

// state computes a target's state at now; "" = gone (drained).
func (s *Server) state(t *target, now time.Time) string {
	if t.draining {
		if !now.Before(t.deregistered.Add(s.opts.DrainFor)) {
			return ""
		}
		return StateDraining
	}
	if t.forced != "" {
		return t.forced
	}
	if now.Before(t.registered.Add(s.opts.HealthyAfter)) {
		return StateInitial
	}
	return StateHealthy
}

// live drops the targets that finished draining and returns the rest. Called with s.mu held.
func (s *Server) live(g *group, now time.Time) []*target {
	g.targets = slices.DeleteFunc(g.targets, func(t *target) bool { return s.state(t, now) == "" })
	return g.targets
}

// reason gives the Reason and Description AWS reports with a state.
func reason(state string) (string, string) {
	switch state {
	case StateInitial:
		return "Elb.RegistrationInProgress", "Target registration is in progress"
	case StateUnhealthy, StateUnhealthyDraining:
		return "Target.FailedHealthChecks", "Health checks failed"
	case StateUnused:
		return "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
	case StateDraining:
		return "Target.DeregistrationInProgress", "Target deregistration is in progress"
	case StateUnavailable:
		return "Target.HealthCheckDisabled", "Health checks are disabled"
	}
	return "", ""
}

// first returns the first of xs that match accepts, or nil.
func first[T any](xs []*T, match func(*T) bool) *T {
	if i := slices.IndexFunc(xs, match); i >= 0 {
		return xs[i]
	}
	return nil
}

// find returns the group's target at ip and port, or nil.
func find(g *group, ip netip.Addr, port int32) *target {
	return first(g.targets, func(t *target) bool { return t.ip == ip && t.port == port })
}

// group finds a target group by ARN. Called with s.mu held.
func (s *Server) group(arn string) *group {
	return first(s.groups, func(g *group) bool { return g.arn == arn })
}

// groupByName finds a target group by name. Called with s.mu held.
func (s *Server) groupByName(name string) *group {
	return first(s.groups, func(g *group) bool { return g.name == name })
}

// createGroup validates spec (defaults already applied) and adds the group. Called with s.mu held.
func (s *Server) createGroup(spec TargetGroupSpec) (*group, *apiError) {
	if !validGroupName(spec.Name) {
		return nil, validationError("Target group name '%s' can have a maximum of 32 characters, must contain only "+
			"alphanumeric characters or hyphens, and must not begin or end with a hyphen", spec.Name)
	}
	switch spec.TargetType {
	case "instance", "ip", "alb":
		if spec.Protocol == "" || spec.Port == 0 || spec.VPCID == "" {
			return nil, validationError("A protocol, port and VPC ID must be specified for target type '%s'", spec.TargetType)
		}
	case "lambda":
	default:
		return nil, validationError("Target type '%s' is not one of instance, ip, lambda, alb", spec.TargetType)
	}
	if spec.Port < 0 || spec.Port > 65535 {
		return nil, validationError("Port %d is outside 1-65535", spec.Port)
	}
	if spec.IPAddressType != "ipv4" && spec.IPAddressType != "ipv6" {
		return nil, validationError("IP address type '%s' is not one of ipv4, ipv6", spec.IPAddressType)
	}
	if spec.VPCID != "" && s.vpc(spec.VPCID) == nil {
		return nil, validationError("The VPC ID '%s' is not found", spec.VPCID)
	}
	if old := s.groupByName(spec.Name); old != nil {
		if old.protocol == spec.Protocol && old.port == spec.Port && old.vpcID == spec.VPCID &&
			old.targetType == spec.TargetType && old.ipType == spec.IPAddressType {
			return old, nil
		}
		return nil, errorf(http.StatusBadRequest, "DuplicateTargetGroupName",
			"A target group with the same name '%s' exists, but with different settings", spec.Name)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(spec.Name))
	id := h.Sum64() ^ s.nextID()*0x9e3779b97f4a7c15 // unique even when a name is reused after deletion
	g := &group{
		arn: fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%016x",
			s.opts.Region, s.opts.AccountID, spec.Name, id),
		name: spec.Name, protocol: spec.Protocol, vpcID: spec.VPCID, targetType: spec.TargetType,
		ipType: spec.IPAddressType, port: spec.Port,
	}
	s.groups = append(s.groups, g)
	return g, nil
}

func validGroupName(n string) bool {
	if len(n) < 1 || len(n) > 32 || n[0] == '-' || n[len(n)-1] == '-' {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ---- actions ----

func notFound(arn string) *apiError {
	return errorf(http.StatusBadRequest, "TargetGroupNotFound", "One or more target groups not found: '%s'", arn)
}

type xmlTargetGroup struct {
	TargetGroupARN             string `xml:"TargetGroupArn"`
	TargetGroupName            string
	Protocol                   string `xml:",omitempty"`
	Port                       int32  `xml:",omitempty"`
	VPCID                      string `xml:"VpcId,omitempty"`
	HealthCheckProtocol        string
	HealthCheckPort            string
	HealthCheckEnabled         bool
	HealthCheckIntervalSeconds int
	HealthCheckTimeoutSeconds  int
	HealthyThresholdCount      int
	UnhealthyThresholdCount    int
	TargetType                 string
	IPAddressType              string `xml:"IpAddressType"`
}

func (g *group) xml() xmlTargetGroup {
	return xmlTargetGroup{
		TargetGroupARN: g.arn, TargetGroupName: g.name, Protocol: g.protocol, Port: g.port, VPCID: g.vpcID,
		HealthCheckProtocol: "TCP", HealthCheckPort: "traffic-port", HealthCheckEnabled: true,
		HealthCheckIntervalSeconds: 30, HealthCheckTimeoutSeconds: 10, HealthyThresholdCount: 5,
		UnhealthyThresholdCount: 2, TargetType: g.targetType, IPAddressType: g.ipType,
	}
}

type targetGroupsResult struct {
	TargetGroups []xmlTargetGroup `xml:"TargetGroups>member"`
	NextMarker   string           `xml:",omitempty"`
}

func (s *Server) describeTargetGroups(form url.Values) response {
	arns, names := members(form, "TargetGroupArns"), members(form, "Names")
	if len(arns) > 0 && len(names) > 0 {
		return failure(validationError("Target group names and target group ARNs cannot be specified at the same time"))
	}
	if lb := form.Get("LoadBalancerArn"); lb != "" {
		return failure(errorf(http.StatusBadRequest, "LoadBalancerNotFound",
			"Load balancer '%s' not found (this fake has no load balancers; ask by target group ARN or name)", lb))
	}
	pageSize, set, perr := parseInt32(form, "PageSize")
	if perr != nil {
		return failure(perr)
	}
	if !set {
		pageSize = 400
	} else if pageSize < 1 || pageSize > 400 {
		return failure(validationError("PageSize %d is outside 1-400", pageSize))
	}
	offset := 0
	if m := form.Get("Marker"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 {
			return failure(validationError("Invalid Marker %q; pass the NextMarker of the previous page", m))
		}
		offset = n
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var sel []*group
	switch {
	case len(arns) > 0:
		for _, a := range arns {
			g := s.group(a)
			if g == nil {
				return failure(notFound(a))
			}
			sel = append(sel, g)
		}
	case len(names) > 0:
		for _, n := range names {
			g := s.groupByName(n)
			if g == nil {
				return failure(notFound(n))
			}
			sel = append(sel, g)
		}
	default:
		sel = s.groups
	}
	var res targetGroupsResult
	for i := offset; i < len(sel) && i < offset+int(pageSize); i++ {
		res.TargetGroups = append(res.TargetGroups, sel[i].xml())
	}
	if offset+int(pageSize) < len(sel) {
		res.NextMarker = strconv.Itoa(offset + int(pageSize))
	}
	return success(res)
}

func (s *Server) createTargetGroupAction(form url.Values) response {
	port, _, perr := parseInt32(form, "Port")
	if perr != nil {
		return failure(perr)
	}
	spec := TargetGroupSpec{
		Name: form.Get("Name"), Port: port, Protocol: form.Get("Protocol"), VPCID: form.Get("VpcId"),
		TargetType: cmp.Or(form.Get("TargetType"), "instance"), IPAddressType: cmp.Or(form.Get("IpAddressType"), "ipv4"),
	}
	tags, terr := parseTags(form)
	if terr != nil {
		return failure(terr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.createGroup(spec)
	if err != nil {
		return failure(err)
	}
	if len(tags) > 0 && g.tags == nil { // an existing group (idempotent create) keeps its tags
		g.tags = tags
	}
	return success(targetGroupsResult{TargetGroups: []xmlTargetGroup{g.xml()}})
}

func (s *Server) deleteTargetGroup(form url.Values) response {
	arn := form.Get("TargetGroupArn")
	if arn == "" {
		return failure(validationError("TargetGroupArn is required"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = slices.DeleteFunc(s.groups, func(g *group) bool { return g.arn == arn })
	return success(nil) // like AWS, deleting an unknown group succeeds
}

// targetReq is one member of a Targets list.
type targetReq struct {
	id      string
	ip      netip.Addr
	port    int32
	portSet bool
	az      string
}

// targetsRequest reads the target group (TargetGroupArn) and the targets (Targets) a RegisterTargets,
// DeregisterTargets or DescribeTargetHealth request names. Called with s.mu held.
func (s *Server) targetsRequest(form url.Values) (*group, []targetReq, *apiError) {
	arn := form.Get("TargetGroupArn")
	g := s.group(arn)
	if g == nil {
		return nil, nil, notFound(arn)
	}
	reqs, err := parseTargets(form, g)
	if err != nil {
		return nil, nil, err
	}
	return g, reqs, nil
}

// targetsChange reads a RegisterTargets or DeregisterTargets request, which must name at least one target.
// Called with s.mu held.
func (s *Server) targetsChange(form url.Values) (*group, []targetReq, *apiError) {
	g, reqs, err := s.targetsRequest(form)
	if err == nil && len(reqs) == 0 {
		err = validationError("Targets must contain at least one target")
	}
	return g, reqs, err
}

// parseTargets reads Targets.member.N.{Id,Port,AvailabilityZone}, checks them against the group's target type
// (this fake takes only ip targets) and address family, and defaults the port to the group's.
func parseTargets(form url.Values, g *group) ([]targetReq, *apiError) {
	ms := indexed(form, "Targets.member")
	if len(ms) > 0 && g.targetType != "ip" {
		return nil, validationError("Target group '%s' has target type '%s'; this fake takes only ip targets", g.name, g.targetType)
	}
	out := make([]targetReq, 0, len(ms))
	for _, m := range ms {
		r := targetReq{id: m["Id"], az: m["AvailabilityZone"], port: g.port}
		if r.id == "" {
			return nil, validationError("A target Id is required for every member of Targets")
		}
		if p := m["Port"]; p != "" {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 1 || n > 65535 {
				return nil, validationError("Port '%s' of target '%s' is not an integer in 1-65535", p, r.id)
			}
			r.port, r.portSet = int32(n), true
		}
		ip, err := netip.ParseAddr(r.id)
		fam := "IPv4"
		if g.ipType == "ipv6" {
			fam = "IPv6"
		}
		if err != nil || ip.Zone() != "" || (fam == "IPv4") != ip.Is4() {
			return nil, validationError("The IP address '%s' is not a valid %s address", r.id, fam)
		}
		r.ip = ip
		if r.port == 0 {
			return nil, validationError("A port must be specified for target '%s'; the target group has no port", r.id)
		}
		out = append(out, r)
	}
	return out, nil
}

// inVPC reports whether ip is in one of the CIDR blocks of the group's VPC.
func (s *Server) inVPC(g *group, ip netip.Addr) bool {
	v := s.vpc(g.vpcID)
	if v == nil {
		return false
	}
	for _, p := range v.cidrs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) registerTargets(form url.Values) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, reqs, err := s.targetsChange(form)
	if err != nil {
		return failure(err)
	}
	// AWS validates the whole request before changing anything.
	for _, r := range reqs {
		in := s.inVPC(g, r.ip)
		switch {
		case !in && r.az == "":
			return failure(validationError("The Availability Zone is required for IP address '%s' because it is not in the VPC", r.id))
		case !in && r.az != "all":
			return failure(validationError("You must specify a valid Availability Zone or select 'all' for all enabled "+
				"Availability zones, since the IP address '%s' is outside the VPC", r.id))
		case in && r.az == "all":
			return failure(validationError("The IP address '%s' is within the VPC, and cannot have its Availability Zone "+
				"overridden to 'all'", r.id))
		}
	}
	now := s.now()
	live := s.live(g, now)
	if s.opts.MaxTargets > 0 {
		type key struct {
			ip   netip.Addr
			port int32
		}
		added := map[key]bool{}
		for _, r := range reqs {
			if find(g, r.ip, r.port) == nil {
				added[key{r.ip, r.port}] = true
			}
		}
		if len(live)+len(added) > s.opts.MaxTargets {
			return failure(errorf(http.StatusBadRequest, "TooManyTargets",
				"You've reached the limit on the number of targets registered to target group '%s' (%d)", g.name, s.opts.MaxTargets))
		}
	}
	for _, r := range reqs {
		t := find(g, r.ip, r.port)
		if t == nil {
			g.targets = append(g.targets, &target{ip: r.ip, port: r.port, az: r.az, registered: now})
			continue
		}
		if st := s.state(t, now); st == StateDraining || st == StateUnhealthyDraining {
			*t = target{ip: r.ip, port: r.port, az: r.az, registered: now}
		}
		// Registering a target that is already registered (and not draining) changes nothing.
	}
	return success(nil)
}

func (s *Server) deregisterTargets(form url.Values) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, reqs, err := s.targetsChange(form)
	if err != nil {
		return failure(err)
	}
	now := s.now()
	s.live(g, now)
	for _, r := range reqs {
		t := find(g, r.ip, r.port)
		// As in ELBv2, a deregistration that does not name the registered port (and AZ) silently does nothing
		// (why ipsync names both: I4 in docs/safety.md); an unknown target is not an error either.
		if t == nil || (t.az != "" && t.az != r.az) || t.draining {
			continue
		}
		t.draining, t.deregistered, t.forced = true, now, ""
	}
	s.live(g, now) // DrainFor 0: gone at once
	return success(nil)
}

type xmlTarget struct {
	ID               string `xml:"Id"`
	Port             int32
	AvailabilityZone string `xml:",omitempty"`
}

type xmlTargetHealth struct {
	State       string
	Reason      string `xml:",omitempty"`
	Description string `xml:",omitempty"`
}

type xmlTargetHealthDescription struct {
	Target          xmlTarget
	HealthCheckPort string
	TargetHealth    xmlTargetHealth
}

type targetHealthResult struct {
	TargetHealthDescriptions []xmlTargetHealthDescription `xml:"TargetHealthDescriptions>member"`
}

func describe(id string, port int32, az, state, reason, desc string) xmlTargetHealthDescription {
	return xmlTargetHealthDescription{
		Target:          xmlTarget{ID: id, Port: port, AvailabilityZone: az},
		HealthCheckPort: strconv.Itoa(int(port)),
		TargetHealth:    xmlTargetHealth{State: state, Reason: reason, Description: desc},
	}
}

func (s *Server) describeTargetHealth(form url.Values) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, reqs, err := s.targetsRequest(form)
	if err != nil {
		return failure(err)
	}
	now := s.now()
	live := s.live(g, now)
	var res targetHealthResult
	add := func(t *target) {
		st := s.state(t, now)
		r, d := reason(st)
		res.TargetHealthDescriptions = append(res.TargetHealthDescriptions, describe(t.ip.String(), t.port, t.az, st, r, d))
	}
	if len(reqs) == 0 {
		for _, t := range live {
			add(t)
		}
		return success(res)
	}
	for _, r := range reqs {
		found := false
		for _, t := range live {
			if t.ip == r.ip && (t.port == r.port || !r.portSet) {
				add(t)
				found = true
			}
		}
		if !found {
			res.TargetHealthDescriptions = append(res.TargetHealthDescriptions, describe(r.ip.String(), r.port, r.az,
				StateUnused, "Target.NotRegistered", "Target is not registered to the target group"))
		}
	}
	return success(res)
}
