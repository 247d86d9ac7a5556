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
	"slices"
	"sort"
	"strconv"
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

// decoded is the file as far as it could be decoded.
type decoded struct {
	fc       fileConfig
	problems []string        // values of the wrong type and unknown keys, each with its line, for people
	invalid  map[string]bool // the keys whose values had the wrong type: "syncs", "syncs[2]", "syncs[0].endpoint"
	skipped  []int           // syncs entries that are not mappings (or empty), which yaml.v3 leaves out of fc.Syncs
}

// decodeYAML decodes one YAML document strictly. An empty document is an empty configuration. A syntax error
// stops it; type errors and unknown keys do not (yaml.v3 decodes everything else): they become d.problems.
func decodeYAML(data []byte, src string) (d decoded, err error) {
	// A panic inside the YAML library must not take the daemon down with a stack trace on bad input.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: the YAML parser failed on this input (%v); check the syntax", src, r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&d.fc); err != nil {
		if errors.Is(err, io.EOF) {
			return decoded{}, nil
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return decoded{}, fmt.Errorf("%s: %s", src, syntaxError(data, err))
		}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) != nil || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
			// Not a mapping at all (a file path read as YAML, a list): nothing else to check.
			return decoded{}, yamlError(src, data, te)
		}
		d.typeErrors(src, te, root.Content[0])
		for path := range d.invalid {
			d.clear(path)
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return decoded{}, fmt.Errorf("%s: %s", src, syntaxError(data, err))
		}
		return decoded{}, fmt.Errorf("%s: line %d: a second YAML document (after ---); put everything in one document", src, extra.Line)
	}
	return d, nil
}

// typeErrors turns yaml.v3's type errors into problems naming their line and key, and records which keys lost
// their value, so that Validate does not also call them missing.
func (d *decoded) typeErrors(src string, te *yaml.TypeError, root *yaml.Node) {
	reLine := regexp.MustCompile("^line (\\d+): (?:cannot unmarshal !!(\\w+)(?: `([^`]*)`)?)?")
	paths := nodePaths(root)
	d.invalid = map[string]bool{}
	for _, m := range te.Errors {
		msg := humanTypeError(m)
		if g := reLine.FindStringSubmatch(m); g != nil && g[2] != "" {
			line, _ := strconv.Atoi(g[1])
			if path := paths.find(line, g[2], g[3]); path != "" {
				d.invalid[path] = true
				msg = "line " + g[1] + ": " + path + ": " + strings.TrimPrefix(msg, "line "+g[1]+": ")
			}
		}
		d.problems = append(d.problems, src+": "+msg)
	}
	if syncs := mapValue(root, "syncs"); syncs != nil && syncs.Kind == yaml.SequenceNode {
		var skipped []int
		for i, item := range syncs.Content {
			if item.Kind != yaml.MappingNode { // yaml.v3 leaves out empty entries too
				skipped = append(skipped, i)
			}
		}
		if len(d.fc.Syncs)+len(skipped) == len(syncs.Content) {
			d.skipped = skipped
		}
	}
}

// clear sets the field at path back to "not given", so that the default applies: yaml.v3 leaves the zero value
// in a field whose value it could not decode, and a zero poll.max would be reported again as below its floor.
func (d *decoded) clear(path string) {
	v := reflect.ValueOf(&d.fc).Elem()
	for i, part := range strings.FieldsFunc(path, func(r rune) bool { return r == '.' || r == '[' }) {
		if idx, ok := strings.CutSuffix(part, "]"); ok {
			n, _ := strconv.Atoi(idx)
			if i == 1 { // syncs[n]: the file's n-th entry, less the entries yaml.v3 left out before it
				if slices.Contains(d.skipped, n) {
					return
				}
				n -= len(slices.DeleteFunc(slices.Clone(d.skipped), func(s int) bool { return s >= n }))
			}
			if v.Kind() != reflect.Slice || n < 0 || n >= v.Len() {
				return
			}
			v = v.Index(n)
		} else {
			for v.Kind() == reflect.Pointer {
				if v.IsNil() {
					return
				}
				v = v.Elem()
			}
			if v.Kind() != reflect.Struct {
				return
			}
			f, ok := fieldByTag(v.Type(), part)
			if !ok {
				return
			}
			v = v.FieldByIndex(f.Index)
		}
	}
	v.SetZero()
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("yaml") == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// apply layers the file over cfg, with a placeholder for each syncs entry yaml.v3 left out, so that syncs[i] in
// every message is the i-th entry of the file.
func (d *decoded) apply(cfg *Config) {
	d.fc.apply(cfg)
	for _, i := range d.skipped {
		cfg.Syncs = slices.Insert(cfg.Syncs, i, Sync{invalid: map[string]bool{"": true}})
	}
	for i := range cfg.Syncs {
		prefix := fmt.Sprintf("syncs[%d].", i)
		for path := range d.invalid {
			if key, ok := strings.CutPrefix(path, prefix); ok {
				if cfg.Syncs[i].invalid == nil {
					cfg.Syncs[i].invalid = map[string]bool{}
				}
				cfg.Syncs[i].invalid[strings.FieldsFunc(key, func(r rune) bool { return r == '.' || r == '[' })[0]] = true
			}
		}
	}
	cfg.syncsInvalid = d.invalid["syncs"]
	cfg.fileProblems = d.problems
}

// pathNode is a value in the file and its key path ("syncs[0].rds.cluster").
type pathNode struct {
	path string
	node *yaml.Node
}

type pathNodes []pathNode

// nodePaths lists every value under root with its key path, outer values first.
func nodePaths(root *yaml.Node) pathNodes {
	var out pathNodes
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		out = append(out, pathNode{path, n})
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(strings.TrimPrefix(path+"."+n.Content[i].Value, "."), n.Content[i+1])
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", root)
	return out
}

// find is the path of the value a type error names: on its line, of its YAML type, with its text when the error
// quotes it; the innermost such value. "" when none fits.
func (ps pathNodes) find(line int, tag, value string) string {
	found := ""
	for _, p := range ps {
		if p.node.Line == line && p.path != "" && strings.TrimPrefix(p.node.ShortTag(), "!!") == tag &&
			quotes(value, p.node.Value) {
			found = p.path
		}
	}
	return found
}

// quotes reports whether a type error's quote of a value (yaml.v3 shortens long ones to 7 characters and "...")
// is v; an error without a quote fits any value.
func quotes(quote, v string) bool {
	if short, ok := strings.CutSuffix(quote, "..."); ok {
		return strings.HasPrefix(v, short)
	}
	return quote == "" || quote == v
}

// mapValue is the value of key in mapping node n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// syntaxError is yaml.v3's syntax error with the line of the problem. yaml.v3 reports the line where the
// enclosing block starts (for "did not find expected '-' indicator", line 1 of a file whose line 30 is
// mis-indented), or one before the problem; the first prefix of the file that does not parse ends on the
// problem's line. The block's line stays in the message, in case the search guessed wrong.
func syntaxError(data []byte, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	g := regexp.MustCompile(`^line (\d+): (.*)$`).FindStringSubmatch(msg)
	if g == nil {
		return msg
	}
	reported, _ := strconv.Atoi(g[1])
	lines := strings.SplitAfter(string(data), "\n")
	fails := func(n int) bool {
		dec := yaml.NewDecoder(strings.NewReader(strings.Join(lines[:n], "")))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); err != nil {
				return !errors.Is(err, io.EOF)
			}
		}
	}
	// The smallest failing prefix, searched from the reported line on (failing prefixes stay failing).
	lo := max(1, min(reported, len(lines)))
	first := lo + sort.Search(len(lines)-lo+1, func(i int) bool { return fails(lo + i) })
	if first > len(lines) || first == reported {
		return msg
	}
	return fmt.Sprintf("line %d: %s (in the block that starts on line %d)", first, g[2], reported)
}

// yamlError is the error of a document whose top level is not a mapping.
func yamlError(src string, data []byte, te *yaml.TypeError) error {
	msgs := make([]string, 0, len(te.Errors)+1)
	for _, m := range te.Errors {
		msgs = append(msgs, humanTypeError(m))
	}
	if hint := inlineHint(src, data); hint != "" {
		msgs = append(msgs, hint)
	}
	return fmt.Errorf("%s:\n  %s", src, strings.Join(msgs, "\n  "))
}

// humanTypeError rewrites one yaml.v3 type error for people: unknown keys name the section and the keys allowed
// there, types are named as YAML, not Go.
func humanTypeError(m string) string {
	reUnknownField := regexp.MustCompile(`^line (\d+): field (.*) not found in type config\.(\w+)$`)
	reIntoType := regexp.MustCompile(`into (?:\[\])?config\.(\w+)$`)
	if g := reUnknownField.FindStringSubmatch(m); g != nil {
		section, keys := sectionKeys(g[3])
		return fmt.Sprintf("line %s: unknown key %q in %s (known keys: %s)", g[1], g[2], section, strings.Join(keys, ", "))
	}
	if g := reIntoType.FindStringSubmatch(m); g != nil {
		section, _ := sectionKeys(g[1])
		switch {
		case strings.HasPrefix(g[0], "into []"):
			return m[:len(m)-len(g[0])] + "into syncs: expected a list of mappings, each starting with \"- \""
		case g[1] == "fileSync":
			return m[:len(m)-len(g[0])] + "into " + section + ": expected a mapping with endpoint:, target_group_arn: ..."
		default:
			return m[:len(m)-len(g[0])] + "into " + section + ": expected a mapping"
		}
	}
	for suffix, expected := range map[string]string{
		"into time.Duration": "a duration with a unit, such as 2s or 500ms",
		"into bool":          "true or false",
		"into int":           "a whole number",
		"into float64":       "a number of calls per second, such as 5",
		"into int32":         "a port number 1-65535",
		"into string":        "a single value (quote it if it contains ': ' or starts with [ or {)",
	} {
		if strings.HasSuffix(m, suffix) {
			return m + ": expected " + expected
		}
	}
	return m
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
