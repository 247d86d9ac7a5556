package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The YAML file as written. Pointer fields tell "absent" (keep the default) from an explicit zero value.
// No custom UnmarshalYAML on a mapping: yaml.v3 does not pass KnownFields on to them, and unknown keys must be
// errors at every level. Scalars may have one (whole), as they have no keys.
type fileConfig struct {
	Syncs          []fileSync     `yaml:"syncs"`
	Discover       *fileDiscover  `yaml:"discover"`
	AWS            *fileAWS       `yaml:"aws"`
	DNS            *fileDNS       `yaml:"dns"`
	Poll           *filePoll      `yaml:"poll"`
	ResyncInterval *time.Duration `yaml:"resync_interval"`
	Listen         *string        `yaml:"listen"`
	Log            *fileLog       `yaml:"log"`
}

type fileSync struct {
	Name             *string       `yaml:"name"`
	Endpoint         *string       `yaml:"endpoint"`
	TargetGroupARN   *string       `yaml:"target_group_arn"`
	Port             *whole[int32] `yaml:"port"`
	AvailabilityZone *string       `yaml:"availability_zone"`
	Prune            *bool         `yaml:"prune"`
	DeregisterAfter  *whole[int]   `yaml:"deregister_after"`
	RoleARN          *string       `yaml:"role_arn"`
	RDSIdentifier    *string       `yaml:"rds_identifier"`
	AllowedCIDRs     []string      `yaml:"allowed_cidrs"`

	// The other sources; a mapping takes exactly one of endpoint, endpoints and rds.
	Endpoints []string `yaml:"endpoints"`
	RDS       *fileRDS `yaml:"rds"`
}

type fileRDS struct {
	Cluster        *string        `yaml:"cluster"`
	Role           *string        `yaml:"role"`
	CustomEndpoint *string        `yaml:"custom_endpoint"`
	Instance       *string        `yaml:"instance"`
	WithReplicas   *bool          `yaml:"with_replicas"`
	Refresh        *time.Duration `yaml:"refresh"`
}

// whole is an integer in the file. yaml.v3 alone decodes 54.32 into an integer field as 54, in silence; whole
// takes integer literals only, and refuses 54.32, 5432.0 and 5e3 with the line, as any other type error.
type whole[T int | int32] struct{ n T }

func (w *whole[T]) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode || node.ShortTag() != "!!int" {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s `%s` into %T", node.Line, node.ShortTag(), node.Value, w.n)}}
	}
	return node.Decode(&w.n)
}

// setWhole is setIf for whole numbers.
func setWhole[T int | int32](dst *T, src *whole[T]) {
	if src != nil {
		*dst = src.n
	}
}

type fileDNS struct {
	Mode    *string        `yaml:"mode"`
	Servers []string       `yaml:"servers"`
	Timeout *time.Duration `yaml:"timeout"`
}

type filePoll struct {
	Min *time.Duration `yaml:"min"`
	Max *time.Duration `yaml:"max"`
}

type fileLog struct {
	Level  *string `yaml:"level"`
	Format *string `yaml:"format"`
}

// Load resolves the configuration: defaults, then --config (a file path, or YAML text when the value contains a
// newline), then the flags given on the command line or through ApplyEnv. It does not check values: call Validate
// for that. A nil f, or one not made by BindFlags, means no flags.
//
// Input it cannot read or parse is an error and a nil Config. Values of the wrong type and unknown keys are an
// error too (a *ValidationError, each problem with its line), but with the Config built from everything else:
// its Validate lists those problems first and then every other, so that one run shows them all.
func Load(f *Flags) (*Config, error) {
	cfg := Defaults()
	set := f.set()

	var fromFile bool
	if set[FlagConfig] && f.config != "" {
		src, data, err := readSource(f.config)
		if err != nil {
			return nil, err
		}
		d, err := decodeYAML(data, src)
		if err != nil {
			return nil, err
		}
		d.apply(cfg)
		fromFile = len(d.fc.Syncs) > 0 || len(d.skipped) > 0
	}

	var mappingFlags []string
	for _, name := range []string{FlagEndpoint, FlagTargetGroupARN, FlagPort} {
		if set[name] {
			mappingFlags = append(mappingFlags, "--"+name)
		}
	}
	if len(mappingFlags) > 0 {
		if fromFile {
			return nil, fmt.Errorf("%s define one mapping from flags, and %s also has syncs: use one or the other "+
				"(drop %s and their %s* environment variables, or move the mapping into syncs:)",
				strings.Join(mappingFlags, ", "), sourceName(f.config), strings.Join(mappingFlags, ", "), EnvPrefix)
		}
		s := DefaultSync()
		s.Endpoint = f.endpoint
		s.TargetGroupARN = f.targetGroupARN
		s.Port = int32(f.port)
		s.zeroPort = set[FlagPort] && f.port == 0
		s.defaultName()
		cfg.Syncs = []Sync{s}
	}
	if set[FlagDNSServer] {
		cfg.DNS.Servers = append([]string(nil), f.dnsServers...)
	}
	if set[FlagListen] {
		cfg.Listen = f.listen
	}
	if set[FlagLogLevel] {
		cfg.Log.Level = f.logLevel
	}
	if set[FlagLogFormat] {
		cfg.Log.Format = f.logFormat
	}
	cfg.DNS.Servers = normalizeServers(cfg.DNS.Servers)
	if len(cfg.fileProblems) > 0 {
		return cfg, &ValidationError{Problems: cfg.fileProblems}
	}
	return cfg, nil
}

// readSource applies the newline rule (a value with a newline is YAML, any other a file path) and returns a name for messages and the YAML bytes.
func readSource(value string) (string, []byte, error) {
	if strings.Contains(value, "\n") {
		return sourceName(value), []byte(value), nil
	}
	data, err := os.ReadFile(value) //nolint:gosec // G304: the operator names the file; reading it is the point
	if err != nil {
		return "", nil, fmt.Errorf("read config file: %w (--config/%s takes a file path, or the YAML itself when the value has more than one line)",
			err, EnvName(FlagConfig))
	}
	return sourceName(value), data, nil
}

func sourceName(value string) string {
	if strings.Contains(value, "\n") {
		return "inline configuration (--config/" + EnvName(FlagConfig) + ")"
	}
	return fmt.Sprintf("config file %q", value)
}

// apply layers the file over cfg.
func (fc *fileConfig) apply(cfg *Config) {
	for _, fs := range fc.Syncs {
		cfg.Syncs = append(cfg.Syncs, fs.sync())
	}
	fc.Discover.apply(cfg)
	fc.AWS.apply(cfg)
	if d := fc.DNS; d != nil {
		setIf(&cfg.DNS.Mode, d.Mode)
		if d.Servers != nil {
			cfg.DNS.Servers = d.Servers
		}
		setIf(&cfg.DNS.Timeout, d.Timeout)
	}
	if p := fc.Poll; p != nil {
		setIf(&cfg.Poll.Min, p.Min)
		setIf(&cfg.Poll.Max, p.Max)
	}
	setIf(&cfg.ResyncInterval, fc.ResyncInterval)
	setIf(&cfg.Listen, fc.Listen)
	if l := fc.Log; l != nil {
		setIf(&cfg.Log.Level, l.Level)
		setIf(&cfg.Log.Format, l.Format)
	}
}

func (fs fileSync) sync() Sync {
	s := DefaultSync()
	setIf(&s.Name, fs.Name)
	setIf(&s.Endpoint, fs.Endpoint)
	s.Endpoints = fs.Endpoints
	if r := fs.RDS; r != nil {
		s.RDS = &RDS{Refresh: DefaultRDSRefresh}
		setIf(&s.RDS.Cluster, r.Cluster)
		setIf(&s.RDS.Role, r.Role)
		setIf(&s.RDS.CustomEndpoint, r.CustomEndpoint)
		setIf(&s.RDS.Instance, r.Instance)
		setIf(&s.RDS.WithReplicas, r.WithReplicas)
		setIf(&s.RDS.Refresh, r.Refresh)
	}
	setIf(&s.TargetGroupARN, fs.TargetGroupARN)
	setWhole(&s.Port, fs.Port)
	setIf(&s.AvailabilityZone, fs.AvailabilityZone)
	setIf(&s.Prune, fs.Prune)
	setWhole(&s.DeregisterAfter, fs.DeregisterAfter)
	setIf(&s.RoleARN, fs.RoleARN)
	setIf(&s.RDSIdentifier, fs.RDSIdentifier)
	if len(fs.AllowedCIDRs) > 0 {
		s.AllowedCIDRs = fs.AllowedCIDRs
	}
	s.zeroPort = fs.Port != nil && fs.Port.n == 0
	s.defaultName()
	return s
}

// defaultName fills an empty Name from the source.
func (s *Sync) defaultName() {
	if s.Name == "" {
		s.Name = s.DefaultName()
	}
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// normalizeServers adds the default DNS port to bare hosts ("10.0.0.2" -> "10.0.0.2:53", "fd00::2" ->
// "[fd00::2]:53"). Anything else is left for Validate to judge.
func normalizeServers(servers []string) []string {
	if len(servers) == 0 {
		return nil
	}
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s
		if _, _, err := net.SplitHostPort(s); err == nil || s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			out[i] = "[" + s + "]:53"
		} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			out[i] = s + ":53"
		} else if !strings.Contains(s, ":") {
			out[i] = s + ":53"
		}
	}
	return out
}
