package lambda

import "testing"

func TestDuplicateKey(t *testing.T) {
	for payload, want := range map[string]string{
		`{}`:                                     "",
		`{"a": 1, "b": {"a": 2}}`:                "",
		`{"a": [{"b": 1}, {"b": 2}], "b": [1]}`:  "",
		`{"a": "a", "b": "a"}`:                   "",
		`{"a": {"x": [1, {"y": null}]}, "c": 3}`: "",
		`{"a": 1, "a": 1}`:                       "a",
		`{"a": {"b": 1}, "a": 2}`:                "a",
		`{"a": [{"b": 1, "b": 2}]}`:              "b",
		`{"a": {"x": [1, {}]}, "c": 3, "c": 4}`:  "c",
		`[{"k": 1}, {"k": 2}]`:                   "",
		`[{"k": 1, "k": 2}]`:                     "k",
	} {
		if got := duplicateKey([]byte(payload)); got != want {
			t.Errorf("duplicateKey(%s) = %q, want %q", payload, got, want)
		}
	}
}
