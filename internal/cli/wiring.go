package cli

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ipsync/ipsync/internal/budget"
	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/discover"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
)

// newLogger builds the zap logger of the configuration, writing to stderr.
func newLogger(cfg *config.Config, stderr io.Writer) *zap.Logger {
	level, err := zapcore.ParseLevel(cfg.Log.Level)
	if err != nil {
		level = zapcore.InfoLevel
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey, encCfg.EncodeTime = "ts", zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if cfg.Log.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), level))
}

// sdkLogger sends the AWS SDK's own log lines (e.g. "falling back to IMDSv1") through log, as JSON lines like
// every other, instead of the SDK's plain "SDK 2006/01/02 WARN ..." lines on stderr.
func sdkLogger(log *zap.Logger) logging.Logger {
	log = log.With(zap.String("component", "aws-sdk"))
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		msg := fmt.Sprintf(format, v...)
		if c == logging.Warn {
			log.Warn(msg)
			return
		}
		log.Debug(msg)
	})
}

// wiring is what every AWS-facing command builds from a valid configuration.
type wiring struct {
	cfg      *config.Config
	log      *zap.Logger
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	factory  *targets.Factory
	budget   *budget.Budget // shared by the factory's clients and discovery's (I11)
	resolver resolver.Lookup
}

func wire(ctx context.Context, env Env, cfg *config.Config) (*wiring, error) {
	w := &wiring{cfg: cfg, log: newLogger(cfg, env.Stderr), registry: prometheus.NewRegistry()}
	w.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	v := buildInfo()
	w.metrics = metrics.New(w.registry, metrics.BuildInfo{Version: v.Version, Commit: v.Commit, GoVersion: v.GoVersion})
	var err error
	if w.resolver, err = engine.NewResolver(cfg, w.metrics, nil); err != nil {
		return nil, fmt.Errorf("DNS resolver: %w", err)
	}
	w.budget = newBudget(cfg, w.metrics)
	if w.factory, err = targets.NewFactory(ctx, targets.FactoryOptions{
		APIOptions: []func(*middleware.Stack) error{w.metrics.AWSMiddleware()},
		Budget:     w.budget,
		Logger:     sdkLogger(w.log),
	}); err != nil {
		return nil, fmt.Errorf("AWS configuration: %w (check AWS_REGION, AWS_PROFILE and credentials)", err)
	}
	return w, nil
}

// newBudget is the process's AWS API budget per account and region (I11): aws.describe_rps and aws.mutate_rps.
func newBudget(cfg *config.Config, m *metrics.Metrics) *budget.Budget {
	return budget.New(budget.Rates{Describe: cfg.AWS.DescribeRate(), Mutate: cfg.AWS.MutateRate()}, m)
}

// shardFlag registers --shard (env IPSYNC_SHARD) on the commands that work on mappings: run, sync, status,
// validate and the Lambda handler.
func shardFlag(fs *flag.FlagSet) *config.Shard {
	s := &config.Shard{}
	fs.Var(s, "shard", "i/n: keep only the mappings whose target group ARN hashes to shard i of n (0 <= i < n), so that n "+
		"processes split a fleet without a coordinator; two processes on one shard stay safe but make every call twice")
	return s
}

// keepShard drops the mappings of other shards and logs which shard this process serves. With discovery, the
// Discoverer keeps the discovered groups of the same shard (wiring.fleet).
func keepShard(cfg *config.Config, shard config.Shard, log *zap.Logger) {
	if shard.Count <= 1 {
		return
	}
	all := len(cfg.Syncs)
	cfg.Syncs = shard.Owned(cfg.Syncs)
	log.Info("serving one shard of the mappings", zap.Stringer("shard", shard), zap.Int("mappings", len(cfg.Syncs)),
		zap.Int("mappings_in_configuration", all))
	if len(cfg.Syncs) == 0 && !cfg.Discover.Enabled() {
		log.Warn(emptyShard, zap.Stringer("shard", shard))
	}
}

const emptyShard = "this shard owns none of the configured mappings: it has nothing to do"

// shardNote says, after a count of the shard's mappings, how many the configuration holds; "" for the whole fleet.
func shardNote(shard config.Shard, all int) string {
	if shard.Count <= 1 {
		return ""
	}
	return fmt.Sprintf(" in shard %s (%d in the configuration)", shard, all)
}

// engine builds the engine; the configuration's warnings are logged first, as every run or sync starts.
func (w *wiring) engine(opts engine.Options) *engine.Engine {
	for _, warning := range w.cfg.Warnings() {
		w.log.Warn("configuration warning", zap.String("warning", warning))
	}
	return engine.New(w.cfg, engine.Deps{
		Resolver: w.resolver,
		Clients:  engine.FromFactory(w.factory),
		Members:  engine.MembersFromFactory(w.factory),
		Metrics:  w.metrics,
		Log:      w.log,
	}, opts)
}

// fleet returns the Fleet that runs the discovered mappings beside eng's static ones; nil when discovery is off.
// Discovery keeps the target groups of shard only, as keepShard keeps the static mappings of it.
func (w *wiring) fleet(eng *engine.Engine, shard config.Shard) *engine.Fleet {
	if !w.cfg.Discover.Enabled() {
		return nil
	}
	d := newDiscoverer(w.cfg, w.factory, w.budget, shard)
	return engine.NewFleet(eng, d, w.cfg, w.log)
}

// newDiscoverer is the search for cfg.Discover's tagged groups of shard. Its clients share the factory's AWS
// configuration (credentials, retryer, metrics middleware) and the factory's AWS API budget b: a search's calls
// draw from the Describe bucket that the mappings' reads draw from (I11).
func newDiscoverer(cfg *config.Config, factory *targets.Factory, b *budget.Budget, shard config.Shard) *discover.Discoverer {
	return discover.New(cfg.Discover, discover.NewAWSClients(factory.Config(), cfg.Discover.RoleARN),
		discover.Options{Shard: shard, Budget: b})
}
