package engine

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/members"
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/plan"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// mapping is one endpoint -> target group pair and everything remembered about it between passes.
type mapping struct {
	e   *Engine
	cfg config.Sync
	log mappingLog

	// busy serializes the work on this mapping: the daemon, RunOnce, a Lambda watch or concurrent Lambda
	// invocations must never plan from, or update, one mapping's memory at the same time (I6, I7). It guards
	// every field below up to mu.
	busy sync.Mutex

	// resync is how often the target group is read to catch drift: resync_interval, or longer when the API
	// budget of the mapping's account and region cannot afford it (resyncIntervals; Reload may change it).
	resync time.Duration

	// Learned once from the target group (init); forgotten after a hard error.
	client        TargetGroup
	membersReader MembersReader // rds: only
	group         targets.Group
	policy        plan.Policy
	family        resolver.Family

	mem         plan.Memory
	current     []nlb.TargetHealth // the target group as last read, updated with our own changes
	describedAt time.Time          // zero: current is unknown
	lastAddrs   []netip.Addr       // last desired addresses: the union of the sources that answered
	// rds: the last successful membership read, the last read's error (nil: it succeeded) and the next read.
	members     members.Members
	membersErr  error
	nextMembers time.Time
	changedAt   time.Time // when the last address change was seen
	// awaitHealthy holds the addresses ipsync registered and is watching until healthy.
	awaitHealthy map[netip.Addr]follow
	nextResolve  time.Time
	// With prune: false, the group's tags as last read or written (ownership.go), and whether the owned targets
	// changed since.
	ownTags    map[string]string
	ownPending bool
	retired    atomic.Bool // set by Reload (under busy) when the mapping was removed or changed: no pass after it
	fellBack   bool        // the last answer came from the recursive servers because the name servers were unreachable
	since      time.Time   // when the mapping was created: readiness says "starting" until a window after it
	// A dry run's last "target group out of sync" line: its plan and the read of the group it stood on (shadowNews).
	shadowLogged string
	shadowRead   time.Time

	// mu guards the outcome of the last pass, which Ready reads without waiting for a pass.
	mu          sync.Mutex
	lastSuccess time.Time
	lastErr     error
	memberIDs   []string // rds: the instances of the last membership read, for MappingsFor
}

// follow is a registered target being watched until healthy.
type follow struct {
	changedAt    time.Time // the address change it answers (zero: none, e.g. the first registration at start-up)
	registeredAt time.Time
}

func newMapping(e *Engine, s config.Sync, resync time.Duration) *mapping {
	return &mapping{
		e:      e,
		cfg:    s,
		resync: resync,
		log: newMappingLog(e.deps.Log, zap.String("sync", s.Name), zap.String("endpoint", describeSource(s)),
			zap.String("target_group", s.TargetGroupARN)),
		awaitHealthy: map[netip.Addr]follow{},
		since:        e.deps.Now(),
	}
}

// reconcile is one pass, for callers outside the daemon's scheduler (RunOnce, the Lambda watch).
func (m *mapping) reconcile(ctx context.Context) Report {
	m.busy.Lock()
	defer m.busy.Unlock()
	return m.pass(ctx)
}

func (m *mapping) now() time.Time { return m.e.deps.Now() }

// ttl is how long an answer stands: its TTL within poll.min and poll.max; poll.min, whatever the TTL, for an
// answer from the zone's own name servers (authoritative mode), which publish a change the moment it is made.
func (m *mapping) ttl(res resolver.Result) time.Duration {
	if res.Mode == resolver.ModeAuthoritative {
		return m.e.cfg.Poll.Min
	}
	return min(max(res.TTL, m.e.cfg.Poll.Min), m.e.cfg.Poll.Max)
}

// observe records a pass's sources in the planner's memory; plan.ObserveSources decides which answers count as
// a resolution for deregister_after (I6).
func (m *mapping) observe(srcs []plan.Source) {
	m.mem = plan.ObserveSources(m.mem, srcs, m.current)
}

// setStatus records the outcome of a pass for Ready.
func (m *mapping) setStatus(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr = err
	if err == nil {
		m.lastSuccess = m.now()
	}
}

// status is the outcome of the last pass: when the last one succeeded and the last error.
func (m *mapping) status() (lastSuccess time.Time, lastErr error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastSuccess, m.lastErr
}
