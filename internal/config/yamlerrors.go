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
