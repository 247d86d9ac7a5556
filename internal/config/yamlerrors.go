package config

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
		expected := "a mapping"
		switch {
		case strings.HasPrefix(g[0], "into []"):
			section, expected = "syncs", "a list of mappings, each starting with \"- \""
		case g[1] == "fileSync":
			expected = "a mapping with endpoint:, target_group_arn: ..."
		}
		return strings.TrimSuffix(m, g[0]) + "into " + section + ": expected " + expected
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

// sections names each raw struct as the YAML section it stands for.
var sections = map[string]struct {
	name string
	t    reflect.Type
}{
	"fileConfig":   {"the top level", reflect.TypeFor[fileConfig]()},
	"fileSync":     {"a syncs entry", reflect.TypeFor[fileSync]()},
	"fileRDS":      {"rds", reflect.TypeFor[fileRDS]()},
	"fileDNS":      {"dns", reflect.TypeFor[fileDNS]()},
	"filePoll":     {"poll", reflect.TypeFor[filePoll]()},
	"fileLog":      {"log", reflect.TypeFor[fileLog]()},
	"fileDiscover": {"discover", reflect.TypeFor[fileDiscover]()},
	"fileAWS":      {"aws", reflect.TypeFor[fileAWS]()},
}

// sectionKeys names a raw struct as the YAML section it stands for and lists its keys.
func sectionKeys(goType string) (string, []string) {
	s, ok := sections[goType]
	if !ok {
		return goType, nil
	}
	keys := make([]string, 0, s.t.NumField())
	for i := range s.t.NumField() {
		keys = append(keys, s.t.Field(i).Tag.Get("yaml"))
	}
	sort.Strings(keys)
	return s.name, keys
}
