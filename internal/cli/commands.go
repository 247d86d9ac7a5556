package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ipsync/ipsync/internal/config"
	"github.com/ipsync/ipsync/internal/engine"
	"github.com/ipsync/ipsync/internal/metrics"
)

func applyEnv(fs *flag.FlagSet, getenv func(string) (string, bool)) error {
	return config.ApplyEnv(fs, getenv)
}

// loadConfig loads and validates; on failure it prints every problem and no AWS call has been made. When Load
// returns a config with its error (a value of the wrong type, an unknown key), Validate lists that error's
// problems with every other one.
func loadConfig(env Env, fs *flag.FlagSet, flags *config.Flags) (*config.Config, bool) {
	cfg, err := config.Load(flags)
	if cfg != nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", fs.Name(), err)
		return nil, false
	}
	return cfg, true
}

// bindDaemonFlags registers the flags of `run`.
func bindDaemonFlags(fs *flag.FlagSet) (flags *config.Flags, dryRun *bool, shard *config.Shard) {
	flags = config.BindFlags(fs)
	dryRun = config.BindDryRun(fs, "shadow mode: resolve, read the target groups, plan and log what would change; no RegisterTargets/DeregisterTargets call")
	return flags, dryRun, shardFlag(fs)
}

// daemonEnvNames are the environment variables `run` reads. healthcheck runs in the daemon's environment (an
// ECS container health check), so it accepts them all.
func daemonEnvNames() []string {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	bindDaemonFlags(fs)
	var names []string
	fs.VisitAll(func(fl *flag.Flag) { names = append(names, config.EnvName(fl.Name)) })
	return names
}

func runDaemon(env Env, args []string) int {
	fs := newFlagSet(env, "run", "Keep every mapping in sync until SIGTERM or SIGINT; serve /metrics /healthz /readyz on --listen.")
	flags, dryRun, shard := bindDaemonFlags(fs)
	if code := parse(env, fs, args); code >= 0 {
		return code
	}
	cfg, ok := loadConfig(env, fs, flags)
	if !ok {
		return exitError
	}
	w, err := wire(env.Signals, env, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync run: %v\n", err)
		return exitError
	}
	defer func() { _ = w.log.Sync() }()
	keepShard(cfg, *shard, w.log)
	eng := w.engine(engine.Options{DryRun: *dryRun})
	var reloader reloader = eng
	if fleet := w.fleet(eng, *shard); fleet != nil {
		reloader = fleet
		go fleet.Run(env.Signals, cfg.Discover.Interval)
	}
	defer reloadOnHangup(env.Signals, flags, *shard, reloader, w.log)()

	var srv *http.Server
	if cfg.Listen != "" {
		ln, err := (&net.ListenConfig{}).Listen(env.Signals, "tcp", cfg.Listen)
		if err != nil {
			fmt.Fprintf(env.Stderr, "ipsync run: cannot listen on %s for /metrics: %v (set --listen or IPSYNC_LISTEN to a free address, or \"\" to disable)\n", cfg.Listen, err)
			return exitError
		}
		srv = metrics.Serve(ln, w.metrics.Handler(w.registry, readiness(eng)), metrics.ServerOptions{})
		w.log.Info("serving /metrics /healthz /readyz", zap.String("listen", ln.Addr().String()))
	}
	names := make([]string, 0, len(cfg.Syncs))
	for _, s := range cfg.Syncs {
		names = append(names, s.Name)
	}
	w.log.Info("ipsync started", zap.String("version", buildInfo().Version), zap.Strings("syncs", names), zap.Bool("dry_run", *dryRun))
	if *dryRun {
		w.log.Warn("dry run (shadow mode): every pass plans and logs what it would change; no target group is changed")
	}

	eng.Run(env.Signals)

	w.log.Info("stopped: signal received")
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return exitOK
}

// readiness is /readyz's view of the engine: mapping names and states; the errors stay in the log.
func readiness(eng *engine.Engine) func() metrics.Readiness {
	return func() metrics.Readiness {
		r := metrics.Readiness{Ready: true}
		for _, m := range eng.Readiness() {
			r.Ready = r.Ready && m.State == engine.ReadyOK
			r.Mappings = append(r.Mappings, metrics.MappingState{Sync: m.Sync, State: m.State})
		}
		return r
	}
}

// oneShotFlags are the shared flags of sync and status, which serve no HTTP: all but --listen.
func oneShotFlags() []string {
	return slices.DeleteFunc(slices.Clone(config.SharedFlags), func(name string) bool { return name == config.FlagListen })
}

// listenEnv is accepted, and ignored, by the commands without --listen: they often run in the daemon's environment
// (a cron job next to the service, a one-off task from its task definition).
var listenEnv = config.EnvName(config.FlagListen)

// outputFlag registers --output text|json.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", "text | json")
}

func checkOutput(env Env, fs *flag.FlagSet, output string) bool {
	if output != "text" && output != "json" {
		fmt.Fprintf(env.Stderr, "%s: --output %q: want text or json\n", fs.Name(), output)
		return false
	}
	return true
}

func runSync(env Env, args []string) int {
	fs := newFlagSet(env, "sync", "One pass over every mapping, then exit.")
	flags := config.BindFlags(fs, oneShotFlags()...)
	shard := shardFlag(fs)
	dryRun := config.BindDryRun(fs, "print the plan and change nothing (no RegisterTargets/DeregisterTargets call)")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 in sync, 2 changes were (or with --dry-run would be) made, 1 error")
	output := outputFlag(fs)
	pushURL := fs.String("pushgateway-url", "", "after the run, push the ipsync_* metrics to this Prometheus Pushgateway, e.g. http://pushgateway:9091 (job ipsync-sync; not with --dry-run)")
	if code := parse(env, fs, args, listenEnv); code >= 0 {
		return code
	}
	if !checkOutput(env, fs, *output) {
		return exitError
	}
	if *pushURL != "" {
		if err := metrics.CheckPushURL(*pushURL); err != nil {
			fmt.Fprintf(env.Stderr, "ipsync sync: %v\n", err)
			return exitError
		}
	}
	cfg, ok := loadConfig(env, fs, flags)
	if !ok {
		return exitError
	}
	w, err := wire(env.Signals, env, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync sync: %v\n", err)
		return exitError
	}
	defer func() { _ = w.log.Sync() }()
	keepShard(cfg, *shard, w.log)
	eng := w.engine(engine.Options{DryRun: *dryRun, Settle: true})
	code, changed := exitOK, false
	if fleet := w.fleet(eng, *shard); fleet != nil && fleet.Discover(env.Signals) != nil {
		code = exitError // logged; the mappings of the regions that answered still run
	}
	reports := eng.RunOnce(env.Signals)
	printReports(env.Stdout, *output, reports, false)

	for _, r := range reports {
		if r.Err() != nil {
			code = exitError
		}
		changed = changed || r.Changed()
	}
	// A dry run changes nothing, so it does not stand for the job's last run.
	if *pushURL != "" && !*dryRun {
		if err := metrics.Push(context.WithoutCancel(env.Signals), *pushURL, w.registry); err != nil {
			fmt.Fprintf(env.Stderr, "ipsync sync: the run finished, but %v\n", err)
			code = exitError
		}
	}
	if code == exitOK && changed && *detailed {
		code = exitChanges
	}
	return code
}

func runStatus(env Env, args []string) int {
	fs := newFlagSet(env, "status", "For each mapping: resolved addresses (TTL, CNAME chain, server) and registered targets with health. Changes nothing.")
	flags := config.BindFlags(fs, oneShotFlags()...)
	shard := shardFlag(fs)
	output := outputFlag(fs)
	if code := parse(env, fs, args, listenEnv); code >= 0 {
		return code
	}
	if !checkOutput(env, fs, *output) {
		return exitError
	}
	cfg, ok := loadConfig(env, fs, flags)
	if !ok {
		return exitError
	}
	cfg.Log.Level = "error" // status is for people; the dry pass's own log lines would only repeat it
	w, err := wire(env.Signals, env, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync status: %v\n", err)
		return exitError
	}
	keepShard(cfg, *shard, w.log) // without --shard: the whole fleet
	eng := w.engine(engine.Options{DryRun: true})
	if fleet := w.fleet(eng, *shard); fleet != nil {
		_ = fleet.Discover(env.Signals) // logged; the mappings found are shown
	}
	reports := eng.RunOnce(context.WithoutCancel(env.Signals))
	printReports(env.Stdout, *output, reports, true)
	for _, r := range reports {
		if r.Err() != nil {
			return exitError
		}
	}
	return exitOK
}

func runValidate(env Env, args []string) int {
	fs := newFlagSet(env, "validate", "Check the configuration and exit 0 (valid) or 1 (every problem listed).")
	flags := config.BindFlags(fs)
	shard := shardFlag(fs)
	remote := fs.Bool("remote", false, "also read each target group and resolve each endpoint, changing nothing: the group exists, has type ip and an NLB protocol, "+
		"and the endpoint (or each rds: member) resolves to addresses of the group's IP family inside allowed_cidrs; prints the port targets will use")
	if code := parse(env, fs, args); code >= 0 {
		return code
	}
	cfg, ok := loadConfig(env, fs, flags)
	if !ok {
		return exitError
	}
	// The whole configuration is checked, as every shard's daemon checks it before it keeps its own mappings; the
	// warnings and --remote are about the shard's mappings, as its daemon logs and syncs them.
	all := len(cfg.Syncs)
	keepShard(cfg, *shard, zap.NewNop())
	if shard.Count > 1 && len(cfg.Syncs) == 0 && !cfg.Discover.Enabled() {
		fmt.Fprintf(env.Stdout, "warning: shard %s: %s\n", shard, emptyShard)
	}
	// Warnings do not change the exit code: the configuration works, just not as the user most likely wants.
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(env.Stdout, "warning: %s\n", w)
	}
	if !*remote {
		fmt.Fprintf(env.Stdout, "configuration is valid: %s%s\n", plural(len(cfg.Syncs), "mapping"), shardNote(*shard, all))
		return exitOK
	}
	w, err := wire(env.Signals, env, cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync validate: %v\n", err)
		return exitError
	}
	results := engine.CheckRemote(context.WithoutCancel(env.Signals), cfg, w.resolver, engine.FromFactory(w.factory), engine.MembersFromFactory(w.factory))
	code := exitOK
	for _, r := range results {
		for _, w := range r.Warnings {
			fmt.Fprintf(env.Stdout, "warning: %s: %s\n", r.Sync, w)
		}
		if r.Err != nil {
			code = exitError
			fmt.Fprintf(env.Stdout, "FAIL %s: %v\n", r.Sync, r.Err)
			continue
		}
		fmt.Fprintf(env.Stdout, "ok   %s: %s\n", r.Sync, r.Summary)
	}
	return code
}

func runHealthcheck(env Env, args []string) int {
	fs := newFlagSet(env, "healthcheck", "Exit 0 when the daemon on --listen answers /readyz with 200 (for container health checks).")
	flags := config.BindFlags(fs, config.FlagConfig, config.FlagListen)
	if code := parse(env, fs, args, daemonEnvNames()...); code >= 0 {
		return code
	}
	cfg, err := config.Load(flags)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync healthcheck: %v\n", err)
		return exitError
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync healthcheck: listen %q is not host:port: %v\n", cfg.Listen, err)
		return exitError
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(env.Signals, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync healthcheck: %v\n", err)
		return exitError
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ipsync healthcheck: %v\n", err)
		return exitError
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(env.Stderr, "ipsync healthcheck: %s: %s %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return exitError
	}
	fmt.Fprintln(env.Stdout, strings.TrimSpace(string(body)))
	return exitOK
}
