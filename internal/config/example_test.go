package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ipsync/ipsync/internal/config"
)

const exampleFile = "../../ipsync.example.yaml"

// TestExampleConfig: the repository's ipsync.example.yaml loads and validates, and uses every key of the
// configuration, so that it stays the complete, commented reference as keys are added.
func TestExampleConfig(t *testing.T) {
	cfg := mustLoad(t, []string{"--config", exampleFile}, nil)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s does not validate: %v", exampleFile, err)
	}
	if len(cfg.Syncs) < 2 {
		t.Errorf("%s has %d mappings", exampleFile, len(cfg.Syncs))
	}

	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	collectKeys(root.Content[0], "", used)
	for _, key := range config.FileKeys() {
		if !used[key] {
			t.Errorf("%s does not show the key %s: add it, with a comment saying what it does", exampleFile, key)
		}
	}
	for key := range used {
		if !slices.Contains(config.FileKeys(), key) {
			t.Errorf("%s has the key %s, which the configuration does not know", exampleFile, key)
		}
	}
	// Every key is explained by a comment on its line, at least once (the mapping's source and target group
	// explain themselves).
	lines := strings.Split(string(data), "\n")
	commented := map[string]bool{"syncs.endpoint": true, "syncs.endpoints": true, "syncs.target_group_arn": true}
	collectLines(root.Content[0], "", func(key string, line int) {
		commented[key] = commented[key] || strings.Contains(lines[line-1], "#")
	})
	for _, key := range config.FileKeys() {
		if !commented[key] {
			t.Errorf("%s: no line with the key %s has a comment saying what it does", exampleFile, key)
		}
	}
}

// collectKeys records the dotted path of every key under n, without list indices: "syncs.rds.cluster".
func collectKeys(n *yaml.Node, path string, keys map[string]bool) {
	collectLines(n, path, func(key string, _ int) { keys[key] = true })
}

// collectLines calls found with the dotted path and line of every key under n.
func collectLines(n *yaml.Node, path string, found func(key string, line int)) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
			found(p, n.Content[i].Line)
			collectLines(n.Content[i+1], p, found)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			collectLines(c, path, found)
		}
	}
}
