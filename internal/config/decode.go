package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
		var ok bool
		if idx, isIndex := strings.CutSuffix(part, "]"); isIndex {
			v, ok = d.element(v, idx, i == 1)
		} else {
			v, ok = fieldOf(v, part)
		}
		if !ok {
			return
		}
	}
	v.SetZero()
}

// element is element idx of the slice v, or false when there is none. For an index into syncs (the path's
// second part), idx counts the file's entries and the entries yaml.v3 left out are not in v.
func (d *decoded) element(v reflect.Value, idx string, syncsIndex bool) (reflect.Value, bool) {
	n, _ := strconv.Atoi(idx)
	if syncsIndex { // syncs[n]: the file's n-th entry, less the entries yaml.v3 left out before it
		if slices.Contains(d.skipped, n) {
			return v, false
		}
		n -= len(slices.DeleteFunc(slices.Clone(d.skipped), func(s int) bool { return s >= n }))
	}
	if v.Kind() != reflect.Slice || n < 0 || n >= v.Len() {
		return v, false
	}
	return v.Index(n), true
}

// fieldOf is the field of the struct v (or of what its pointers point to) whose yaml key is tag, or false when
// there is none or a pointer on the way is nil.
func fieldOf(v reflect.Value, tag string) (reflect.Value, bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return v, false
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return v, false
	}
	f, ok := fieldByTag(v.Type(), tag)
	if !ok {
		return v, false
	}
	return v.FieldByIndex(f.Index), true
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
