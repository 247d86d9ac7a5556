package config

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Names of the shared flags BindFlags registers.
const (
	FlagConfig         = "config"
	FlagEndpoint       = "endpoint"
	FlagTargetGroupARN = "target-group-arn"
	FlagPort           = "port"
	FlagDNSServer      = "dns-server"
	FlagListen         = "listen"
	FlagLogLevel       = "log-level"
	FlagLogFormat      = "log-format"
	FlagDryRun         = "dry-run" // sync, run and the Lambda handler: BindDryRun
)

// EnvPrefix starts the environment variable of every flag.
const EnvPrefix = "IPSYNC_"

// EnvName is the environment variable for a flag: "dns-server" -> "IPSYNC_DNS_SERVER".
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Flags holds the shared flags bound by BindFlags. Pass it to Load after fs.Parse and ApplyEnv.
type Flags struct {
	fs             *flag.FlagSet
	config         string
	endpoint       string
	targetGroupARN string
	port           int32Value
	dnsServers     listValue
	listen         string
	logLevel       string
	logFormat      string
}

// SharedFlags are the names of the flags BindFlags registers, in that order.
var SharedFlags = []string{FlagConfig, FlagEndpoint, FlagTargetGroupARN, FlagPort, FlagDNSServer, FlagListen, FlagLogLevel, FlagLogFormat}

// BindFlags registers the shared flags (the command line's side of the configuration file) on fs: all of them, or
// only those named, for a command that reads no others. Each is also read from its environment variable (EnvName).
func BindFlags(fs *flag.FlagSet, only ...string) *Flags {
	f := &Flags{fs: fs}
	bind := func(name string) bool { return len(only) == 0 || slices.Contains(only, name) }
	if bind(FlagConfig) {
		fs.StringVar(&f.config, FlagConfig, "", "configuration: a YAML file path, or the YAML itself (a value containing a newline)")
	}
	if bind(FlagEndpoint) {
		fs.StringVar(&f.endpoint, FlagEndpoint, "", "DNS name to follow, for one mapping from flags")
	}
	if bind(FlagTargetGroupARN) {
		fs.StringVar(&f.targetGroupARN, FlagTargetGroupARN, "", "ARN of the ip target group to keep pointed at --endpoint")
	}
	if bind(FlagPort) {
		fs.Var(&f.port, FlagPort, "target port, 1-65535 (default: the target group's port)")
	}
	if bind(FlagDNSServer) {
		fs.Var(&f.dnsServers, FlagDNSServer, "DNS server host:port; repeatable, or comma-separated (default: /etc/resolv.conf)")
	}
	if bind(FlagListen) {
		fs.StringVar(&f.listen, FlagListen, DefaultListen, `address for /metrics /healthz /readyz; "" disables`)
	}
	if bind(FlagLogLevel) {
		fs.StringVar(&f.logLevel, FlagLogLevel, DefaultLogLevel, "debug | info | warn | error")
	}
	if bind(FlagLogFormat) {
		fs.StringVar(&f.logFormat, FlagLogFormat, DefaultLogFormat, "json | console")
	}
	return f
}

// set reports which flags were given, on the command line or through ApplyEnv.
func (f *Flags) set() map[string]bool {
	set := map[string]bool{}
	if f != nil && f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	}
	return set
}

// ApplyEnv sets every flag of fs that was not given on the command line from its environment variable
// IPSYNC_<NAME>, if that variable exists (even when empty: IPSYNC_LISTEN= disables the listener). Call it after
// fs.Parse; it serves any flag in fs, not only the shared ones. The command line wins, except for --dry-run
// (BindDryRun): given on the command line and in its variable, the two must agree. A flag whose flag.Value has a method
// Repeatable() bool returning true takes a comma-separated list, one Set per element. getenv is os.LookupEnv
// in production. All bad values are reported together, each naming its variable.
func ApplyEnv(fs *flag.FlagSet, getenv func(string) (string, bool)) error {
	if !fs.Parsed() {
		return errors.New("config.ApplyEnv: call fs.Parse first, so that command-line flags take precedence over the environment")
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })

	var errs []error
	fs.VisitAll(func(fl *flag.Flag) {
		env := EnvName(fl.Name)
		value, ok := getenv(env)
		if !ok {
			return
		}
		if given[fl.Name] {
			if err := agree(fl, env, value); err != nil {
				errs = append(errs, err)
			}
			return
		}
		values := []string{value}
		if r, ok := fl.Value.(interface{ Repeatable() bool }); ok && r.Repeatable() {
			values = splitList(value)
			if len(values) == 0 {
				// An empty list is still a decision ("use the default servers"), so mark the flag as set.
				values = []string{""}
			}
		}
		for _, v := range values {
			if err := fs.Set(fl.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: invalid value for --%s: %w", env, value, fl.Name, err))
				return
			}
		}
	})
	return errors.Join(errs...)
}

// agree checks the variable of a safety flag (see BindDryRun) given on the command line too: the command line
// does not simply win, since two settings that disagree leave no way to tell which one the user meant.
func agree(fl *flag.Flag, env, value string) error {
	v, ok := fl.Value.(*onceBool)
	if !ok {
		return nil // the command line wins
	}
	if err := v.Set(value); err != nil {
		return fmt.Errorf("environment variable %s=%q and --%s=%s on the command line disagree: an ambiguous %s setting "+
			"is refused, never run live; unset %s or drop --%s", env, value, fl.Name, v, fl.Name, env, fl.Name)
	}
	return nil
}

// BindDryRun registers --dry-run on fs. It is a safety setting (I8, docs/safety.md): given twice with different
// values (--dry-run --dry-run=false), or on the command line and in IPSYNC_DRY_RUN with different values, it is
// an error, where any other flag would take the last value or the command line's: an ambiguous setting must never
// run live.
func BindDryRun(fs *flag.FlagSet, usage string) *bool {
	v := &onceBool{name: FlagDryRun}
	fs.Var(v, FlagDryRun, usage)
	return &v.value
}

// onceBool is a bool flag that refuses to be set again to a different value.
type onceBool struct {
	name       string
	value, set bool
}

func (b *onceBool) String() string {
	if b == nil {
		return "false"
	}
	return strconv.FormatBool(b.value)
}

// IsBoolFlag lets the flag package accept --dry-run without a value.
func (b *onceBool) IsBoolFlag() bool { return true }

func (b *onceBool) Set(s string) error {
	v, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("expected true or false, got %q", s)
	}
	if b.set && v != b.value {
		return fmt.Errorf("--%s was already given as %t: an ambiguous %s setting is refused, never run live; give it once",
			b.name, b.value, b.name)
	}
	b.value, b.set = v, true
	return nil
}

// CheckEnv returns an error naming every IPSYNC_* variable in environ ("NAME=value" strings, as os.Environ
// returns them) that no flag of fs reads and that is not one of also (variables the command reads outside its
// flags). A variable ipsync does not read would otherwise be ignored in silence: IPSYNC_DRY_RUN for a command
// without --dry-run, or a misspelt name, would run live while its author believes otherwise.
func CheckEnv(fs *flag.FlagSet, environ []string, also ...string) error {
	read := map[string]bool{}
	fs.VisitAll(func(fl *flag.Flag) { read[EnvName(fl.Name)] = true })
	for _, name := range also {
		read[name] = true
	}
	var unread []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !read[name] && !slices.Contains(unread, name) {
			unread = append(unread, name)
		}
	}
	if len(unread) == 0 {
		return nil
	}
	sort.Strings(unread)
	known := make([]string, 0, len(read))
	for name := range read {
		known = append(known, name)
	}
	sort.Strings(known)
	noun := "variable " + unread[0] + " is"
	if len(unread) > 1 {
		noun = "variables " + strings.Join(unread, ", ") + " are"
	}
	return fmt.Errorf("environment %s set, but no flag of %s reads it: unset it, or fix its name (this command reads %s)",
		noun, fs.Name(), strings.Join(known, ", "))
}

// splitList splits a comma-separated list, trimming spaces and dropping empty elements.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// listValue is a repeatable string flag; each Set appends, and a comma-separated value appends each element.
type listValue []string

func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *listValue) Set(s string) error {
	*l = append(*l, splitList(s)...)
	return nil
}

// Repeatable tells ApplyEnv that the environment variable holds a comma-separated list.
func (l *listValue) Repeatable() bool { return true }

// int32Value is an int32 flag. Range checks (1-65535, and an explicit 0) are Validate's job, so that they are
// reported together with every other problem.
type int32Value int32

func (v *int32Value) String() string {
	if v == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*v), 10)
}

func (v *int32Value) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return fmt.Errorf("expected a port number 1-65535, got %q", s)
	}
	*v = int32Value(n)
	return nil
}
