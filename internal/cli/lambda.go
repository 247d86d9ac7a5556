package cli

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/lambda"
	"github.com/ipsync/ipsync/internal/targets"
)

// Lambda's runtime sets LambdaRuntimeEnv; FailoverWindowEnv bounds the failover watch (a Go duration; default
// lambda.DefaultWindow, always capped by the invocation's remaining time).
const (
	LambdaRuntimeEnv  = "AWS_LAMBDA_RUNTIME_API"
	FailoverWindowEnv = config.EnvPrefix + "FAILOVER_WINDOW"
)

func inLambda(env Env) bool {
	v, ok := env.Getenv(LambdaRuntimeEnv)
	return ok && v != ""
}

// runLambda builds the configuration, the AWS clients and the engine once for this execution environment, then
// serves invocations until Lambda ends the process. It returns only on a configuration error, before the first
// invocation: Lambda then reports an init error and the log says what is wrong.
func runLambda(env Env) int {
	fs := newFlagSet(env, "lambda", "The Lambda handler; configured from IPSYNC_CONFIG or the flags' IPSYNC_* variables.")
	flags := config.BindFlags(fs)
	dryRun := config.BindDryRun(fs, "plan only, for every invocation: no RegisterTargets/DeregisterTargets call")
	shard := shardFlag(fs)
	if code := parse(env, fs, nil, FailoverWindowEnv); code >= 0 {
		return code
	}
	cfg, ok := loadConfig(env, fs, flags)
	if !ok {
		return exitError
	}
	window := lambda.DefaultWindow
	if v, ok := env.Getenv(FailoverWindowEnv); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fmt.Fprintf(env.Stderr, "ipsync lambda: %s=%q: expected a duration such as 120s\n", FailoverWindowEnv, v)
			return exitError
		}
		window = d
	}
	log := newLogger(cfg, env.Stderr)
	keepShard(cfg, *shard, log)
	// The failover watch resolves every poll.min in authoritative mode too: it asks the name servers directly.
	res, err := engine.NewResolver(cfg, nil, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync lambda: DNS resolver: %v\n", err)
		return exitError
	}
	apiBudget := newBudget(cfg, nil)
	factory, err := targets.NewFactory(env.Signals, targets.FactoryOptions{Budget: apiBudget, Logger: sdkLogger(log)})
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync lambda: AWS configuration: %v\n", err)
		return exitError
	}
	var disc engine.Discoverer
	if cfg.Discover.Enabled() {
		disc = newDiscoverer(cfg, factory, apiBudget, *shard)
	}
	h := lambda.New(lambda.Options{
		Config:   cfg,
		Resolver: res,
		Clients:  engine.FromFactory(factory),
		Members:  engine.MembersFromFactory(factory),
		Log:      log,
		Metrics:  env.Stdout,
		Window:   window,
		DryRun:   *dryRun,

		Discoverer: disc,
	})
	names := make([]string, len(cfg.Syncs))
	for i, s := range cfg.Syncs {
		names[i] = s.Name
	}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration warning", zap.String("warning", w))
	}
	log.Info("ipsync Lambda handler ready", zap.String("version", buildInfo().Version), zap.Strings("syncs", names),
		zap.Duration("failover_window", window), zap.Bool("dry_run", *dryRun))
	_ = log.Sync()
	lambda.Serve(h)
	return exitError // not reached: Serve ends the process when the Runtime API fails
}
