// Package nlb holds the values that describe the targets of a Network Load Balancer's target group. The
// planner, the engine and the AWS adapter (package targets) share them, so that the planner never imports the
// adapter or the AWS SDK.
package nlb

import "net/netip"

// Target is one registration: IP, Port, AvailabilityZone ("" = not set; "all" for outside-VPC addresses).
type Target struct {
	IP               netip.Addr `json:"ip"`
	Port             int32      `json:"port"`
	AvailabilityZone string     `json:"availability_zone,omitempty"`
}

func (t Target) String() string {
	s := netip.AddrPortFrom(t.IP, uint16(t.Port)).String() //nolint:gosec // G115: a port is 1-65535 (validated config, AWS answers)
	if t.AvailabilityZone != "" {
		s += "/" + t.AvailabilityZone
	}
	return s
}

// The target health states ipsync acts on, as DescribeTargetHealth reports them. The others (unhealthy, unused,
// unavailable) count as registered like initial and healthy.
const (
	StateInitial           = "initial"  // registered, first health checks under way
	StateHealthy           = "healthy"  // serving
	StateDraining          = "draining" // deregistered, connections draining
	StateUnhealthyDraining = "unhealthy.draining"
)

// TargetHealth is one row of DescribeTargetHealth.
type TargetHealth struct {
	Target
	State       string `json:"state"`            // initial healthy unhealthy unhealthy.draining unused draining unavailable
	Reason      string `json:"reason,omitempty"` // e.g. Elb.RegistrationInProgress
	Description string `json:"description,omitempty"`
}

// Draining reports whether the target is on its way out; such a target does not count as registered (I5).
func (h TargetHealth) Draining() bool {
	return h.State == StateDraining || h.State == StateUnhealthyDraining
}
