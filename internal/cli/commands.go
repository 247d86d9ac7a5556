package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

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
	"github.com/ipsync/ipsync/internal/nlb"
	"github.com/ipsync/ipsync/internal/resolver"
	"github.com/ipsync/ipsync/internal/targets"
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
	if w.factory, err = targets.NewFactory(ctx, targets.FactoryOptions{
		APIOptions: []func(*middleware.Stack) error{w.metrics.AWSMiddleware()},
		Budget:     newBudget(cfg, w.metrics),
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

// shardFlag registers --shard (env IPSYNC_SHARD) on the commands that sync: run, sync and the Lambda handler.
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
		log.Warn("this shard owns none of the configured mappings: it has nothing to do", zap.Stringer("shard", shard))
	}
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
// Discovery's clients share the factory's AWS configuration (credentials, retryer, metrics middleware).
func (w *wiring) fleet(eng *engine.Engine, shard config.Shard) *engine.Fleet {
	if !w.cfg.Discover.Enabled() {
		return nil
	}
	d := discover.New(w.cfg.Discover, discover.NewAWSClients(w.factory.Config(), w.cfg.Discover.RoleARN), discover.Options{Shard: shard})
	return engine.NewFleet(eng, d, w.cfg, w.log)
}

// bindDaemonFlags registers the flags of `run`.
func bindDaemonFlags(fs *flag.FlagSet) (flags *config.Flags, dryRun *bool, shard *config.Shard) {
	flags = config.BindFlags(fs)
	dryRun = fs.Bool("dry-run", false, "shadow mode: resolve, read the target groups, plan and log what would change; no RegisterTargets/DeregisterTargets call")
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
		srv = metrics.Serve(ln, metrics.Handler(w.registry, readiness(eng)), metrics.ServerOptions{})
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
	dryRun := fs.Bool("dry-run", false, "print the plan and change nothing (no RegisterTargets/DeregisterTargets call)")
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
	eng := w.engine(engine.Options{DryRun: true})
	if fleet := w.fleet(eng, config.Shard{}); fleet != nil { // status shows the whole fleet
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
	remote := fs.Bool("remote", false, "also check each target group: exists, type ip, protocol, port, VPC, and that the endpoint resolves")
	if code := parse(env, fs, args); code >= 0 {
		return code
	}
	cfg, ok := loadConfig(env, fs, flags)
	if !ok {
		return exitError
	}
	// Warnings do not change the exit code: the configuration works, just not as the user most likely wants.
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(env.Stdout, "warning: %s\n", w)
	}
	if !*remote {
		fmt.Fprintf(env.Stdout, "configuration is valid: %s\n", plural(len(cfg.Syncs), "mapping"))
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

// printReports writes pass reports for people or as JSON.
func printReports(w io.Writer, output string, reports []engine.Report, status bool) {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Syncs []engine.Report `json:"syncs"`
		}{reports})
		return
	}
	for _, r := range reports {
		fmt.Fprintf(w, "%s  %s -> %s\n", r.Sync, r.Endpoint, r.TargetGroupARN)
		if r.Error != "" {
			fmt.Fprintf(w, "  error:        %s\n", r.Error)
		}
		if len(r.Addresses) > 0 {
			fmt.Fprintf(w, "  dns:          %s (ttl %s, via %s, server %s, %s mode)\n", joinAddrs(r.Addresses), r.TTL, strings.Join(r.Chain, " -> "), r.Server, r.DNSMode)
		}
		if r.DNSFallback != "" {
			fmt.Fprintf(w, "  dns mode:     fallback to recursive (dns.servers): %s\n", r.DNSFallback)
		}
		if len(r.Sources) > 1 || len(r.Sources) == 1 && r.Sources[0].InstanceID != "" {
			for _, s := range r.Sources {
				fmt.Fprintf(w, "  source:       %s\n", describeSourceReport(s))
			}
		}
		if status || r.Error == "" {
			fmt.Fprintf(w, "  targets:      %s\n", joinHealth(r.Targets))
		}
		verb := ""
		if r.DryRun && !status {
			verb = "would "
		}
		if status && r.Changed() {
			verb = "next pass would "
		}
		if len(r.Registered) > 0 {
			fmt.Fprintf(w, "  %sregister:   %s\n", verb, joinTargets(r.Registered))
		}
		if len(r.Deregistered) > 0 {
			fmt.Fprintf(w, "  %sderegister: %s\n", verb, joinTargets(r.Deregistered))
		}
		if len(r.Waiting) > 0 {
			fmt.Fprintf(w, "  waiting:      %s (stale; deregistered after deregister_after resolutions without it)\n", joinAddrs(r.Waiting))
		}
		if len(r.Kept) > 0 {
			fmt.Fprintf(w, "  kept:         %s (stale, not registered by ipsync; prune is false)\n", joinAddrs(r.Kept))
		}
		if len(r.Held) > 0 {
			fmt.Fprintf(w, "  held:         %s (stale for now, but a source that is unknown or not available stands for it)\n", joinAddrs(r.Held))
		}
		state := "in sync"
		switch {
		case r.Error != "" && len(r.Sources) > 0 && len(r.Addresses) > 0:
			state = "error: some sources are unknown; what they stood for was kept"
		case r.Error != "":
			state = "error: nothing changed"
		case r.Changed() && r.DryRun:
			state = "out of sync"
		case r.Changed():
			state = "changed"
		case !r.InSync:
			state = "converging"
		}
		fmt.Fprintf(w, "  result:       %s\n", state)
	}
}

// describeSourceReport is one source of a mapping on one line: "orders-2 (reader, available) orders-2.c9.rds.amazonaws.com: answered 10.0.1.5".
func describeSourceReport(s engine.SourceReport) string {
	var b strings.Builder
	if s.InstanceID != "" {
		fmt.Fprintf(&b, "%s (%s, %s) ", s.InstanceID, s.Role, cmp.Or(s.Status, "not described"))
	}
	fmt.Fprintf(&b, "%s: %s", cmp.Or(s.Name, "no endpoint"), s.State)
	if len(s.Addresses) > 0 {
		b.WriteString(" " + joinAddrs(s.Addresses))
	}
	if s.Error != "" {
		b.WriteString(" (" + s.Error + ")")
	}
	return b.String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func joinTargets(ts []nlb.Target) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func joinHealth(hs []nlb.TargetHealth) string {
	if len(hs) == 0 {
		return "none"
	}
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.Target.String() + " " + h.State
	}
	return strings.Join(s, ", ")
}
