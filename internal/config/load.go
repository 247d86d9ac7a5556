package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"sort"
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
// newline), then the flags given on the command line or through ApplyEnv. It fails on input it cannot read or
// parse (unknown keys included, with their line); it does not check values: call Validate for that. A nil f,
// or one not made by BindFlags, means no flags.
func Load(f *Flags) (*Config, error) {
	cfg := Defaults()
	set := f.set()

	var fromFile bool
	if set[FlagConfig] && f.config != "" {
		src, data, err := readSource(f.config)
		if err != nil {
			return nil, err
		}
		fc, err := decodeYAML(data, src)
		if err != nil {
			return nil, err
		}
		fc.apply(cfg)
		fromFile = len(fc.Syncs) > 0
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
	return cfg, nil
}

// readSource applies the newline rule of SPEC §5 and returns a name for messages and the YAML bytes.
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

// decodeYAML decodes one YAML document strictly. An empty document is an empty configuration.
func decodeYAML(data []byte, src string) (fc fileConfig, err error) {
	// A panic inside the YAML library must not take the daemon down with a stack trace on bad input.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: the YAML parser failed on this input (%v); check the syntax", src, r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil {
		if errors.Is(err, io.EOF) {
			return fileConfig{}, nil
		}
		return fileConfig{}, yamlError(src, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return fileConfig{}, yamlError(src, data, err)
		}
		return fileConfig{}, fmt.Errorf("%s: line %d: a second YAML document (after ---); put everything in one document", src, extra.Line)
	}
	return fc, nil
}

// yamlError rewrites yaml.v3 errors for people: unknown keys name the section and the keys allowed there, types
// are named as YAML, not Go.
func yamlError(src string, data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %s", src, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// Compiled here, on the error path only, to keep the package free of package-level state.
	reUnknownField := regexp.MustCompile(`^line (\d+): field (.*) not found in type config\.(\w+)$`)
	reIntoType := regexp.MustCompile(`into (?:\[\])?config\.(\w+)$`)
	msgs := make([]string, 0, len(te.Errors))
	for _, m := range te.Errors {
		if g := reUnknownField.FindStringSubmatch(m); g != nil {
			section, keys := sectionKeys(g[3])
			m = fmt.Sprintf("line %s: unknown key %q in %s (known keys: %s)", g[1], g[2], section, strings.Join(keys, ", "))
		} else if g := reIntoType.FindStringSubmatch(m); g != nil {
			section, _ := sectionKeys(g[1])
			switch {
			case strings.HasPrefix(g[0], "into []"):
				m = m[:len(m)-len(g[0])] + "into syncs: expected a list of mappings, each starting with \"- \""
			case g[1] == "fileSync":
				m = m[:len(m)-len(g[0])] + "into " + section + ": expected a mapping with endpoint:, target_group_arn: ..."
			default:
				m = m[:len(m)-len(g[0])] + "into " + section + ": expected a mapping"
			}
		} else if strings.HasSuffix(m, "into time.Duration") {
			m += ": expected a duration with a unit, such as 2s or 500ms"
		} else if strings.HasSuffix(m, "into bool") {
			m += ": expected true or false"
		} else if strings.HasSuffix(m, "into int") {
			m += ": expected a whole number"
		} else if strings.HasSuffix(m, "into float64") {
			m += ": expected a number of calls per second, such as 5"
		} else if strings.HasSuffix(m, "into int32") {
			m += ": expected a port number 1-65535"
		}
		msgs = append(msgs, m)
	}
	if hint := inlineHint(src, data); hint != "" {
		msgs = append(msgs, hint)
	}
	return fmt.Errorf("%s:\n  %s", src, strings.Join(msgs, "\n  "))
}

// inlineHint explains a file path that was read as YAML because it contained a newline.
func inlineHint(src string, data []byte) string {
	if !strings.HasPrefix(src, "inline") {
		return ""
	}
	var n yaml.Node
	if yaml.Unmarshal(data, &n) != nil || len(n.Content) != 1 || n.Content[0].Kind != yaml.ScalarNode {
		return ""
	}
	return "the value contains a newline, so it was read as YAML, not as a file path; remove the newline to name a file"
}

// sectionKeys names a raw struct as the YAML section it stands for and lists its keys.
func sectionKeys(goType string) (string, []string) {
	var t reflect.Type
	section := goType
	switch goType {
	case "fileConfig":
		t, section = reflect.TypeOf(fileConfig{}), "the top level"
	case "fileSync":
		t, section = reflect.TypeOf(fileSync{}), "a syncs entry"
	case "fileRDS":
		t, section = reflect.TypeOf(fileRDS{}), "rds"
	case "fileDNS":
		t, section = reflect.TypeOf(fileDNS{}), "dns"
	case "filePoll":
		t, section = reflect.TypeOf(filePoll{}), "poll"
	case "fileLog":
		t, section = reflect.TypeOf(fileLog{}), "log"
	case "fileDiscover":
		t, section = reflect.TypeOf(fileDiscover{}), "discover"
	case "fileAWS":
		t, section = reflect.TypeOf(fileAWS{}), "aws"
	default:
		return section, nil
	}
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		keys = append(keys, t.Field(i).Tag.Get("yaml"))
	}
	sort.Strings(keys)
	return section, keys
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
