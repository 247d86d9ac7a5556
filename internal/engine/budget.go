package engine

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
)

// This file is how the engine keeps to the AWS API budget (I11), with package budget's buckets: drift re-reads
// spaced to fit the Describe budget, and a failover's calls marked to go first.

// driftShare is the part of an account's Describe budget that drift re-reads may use when they are spaced out:
// the rest stays free for failovers, the reads that follow a new target's health, and start-up.
const driftShare = 0.8

// budgetRegion is an account and region: the API budget's scope.
type budgetRegion struct{ account, name string }

// resyncIntervals returns each mapping's drift re-read interval: resync_interval, or longer where the mappings of
// one account and region would otherwise ask more DescribeTargetHealth a second than driftShare of
// aws.describe_rps. Re-reads then stretch instead of queueing without end behind the budget. It also returns the
// stretch of each account and region, and logs what differs from before (the stretches in force until now): a
// new or changed stretch, and one that ended. Reload calls it after every discovery search; an unchanged stretch
// is not logged again.
func resyncIntervals(cfg *config.Config, before map[budgetRegion]time.Duration, log *zap.Logger) ([]time.Duration, map[budgetRegion]time.Duration) {
	keys := make([]budgetRegion, len(cfg.Syncs))
	count := map[budgetRegion]int{}
	for i, s := range cfg.Syncs {
		account, name, err := budget.KeyOf(s.TargetGroupARN)
		if err != nil {
			continue // refused with a clear error on the mapping's first pass
		}
		keys[i] = budgetRegion{account, name}
		count[keys[i]]++
	}
	rps := cfg.AWS.DescribeRate()
	stretched := map[budgetRegion]time.Duration{}
	for k, n := range count {
		need := time.Duration(float64(n) / (rps * driftShare) * float64(time.Second)).Round(time.Second)
		if need <= cfg.ResyncInterval {
			continue
		}
		stretched[k] = need
		if before[k] != need {
			log.Info("resync_interval stretched to keep drift re-reads within the AWS API budget",
				zap.String("account", k.account), zap.String("region", k.name), zap.Int("mappings", n),
				zap.Float64("describe_rps", rps), zap.Duration("resync_interval", cfg.ResyncInterval),
				zap.Duration("effective_resync_interval", need))
		}
	}
	for k := range before {
		if _, still := stretched[k]; !still {
			log.Info("resync_interval no longer stretched: the drift re-reads fit the AWS API budget",
				zap.String("account", k.account), zap.String("region", k.name), zap.Int("mappings", count[k]),
				zap.Float64("describe_rps", rps), zap.Duration("resync_interval", cfg.ResyncInterval))
		}
	}
	out := make([]time.Duration, len(cfg.Syncs))
	for i := range cfg.Syncs {
		out[i] = max(cfg.ResyncInterval, stretched[keys[i]])
	}
	return out, stretched
}

// setResync changes the mapping's drift re-read interval (Reload), once its pass in flight is done.
func (m *mapping) setResync(d time.Duration) {
	m.busy.Lock()
	defer m.busy.Unlock()
	m.resync = d
}

// budgetCtx marks the calls of a mapping following an address change as urgent until its target group is in sync
// again: they take the next token of the budget, ahead of drift re-reads. The caller holds m.busy.
func (m *mapping) budgetCtx(ctx context.Context) context.Context {
	if m.changedAt.IsZero() {
		return ctx
	}
	return budget.Urgent(ctx)
}

// followEvery is how often the target group is read while a target ipsync registered is not yet healthy:
// FollowInterval, unless the budget made resync_interval stretch; then only a failover's new targets are followed
// that closely, and the others (e.g. every mapping's first registration at start-up) show their health at the
// next drift re-read. The caller holds m.busy.
func (m *mapping) followEvery() time.Duration {
	if m.resync <= m.e.cfg.ResyncInterval {
		return m.e.opts.FollowInterval
	}
	for _, f := range m.awaitHealthy {
		if !f.changedAt.IsZero() {
			return m.e.opts.FollowInterval
		}
	}
	return m.resync
}
