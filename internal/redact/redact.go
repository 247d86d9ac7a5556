// Package redact keeps secrets out of what ipsync logs, prints and returns.
package redact

import "strings"

// URL returns s with the user info of its authority ("http://user:password@host" -> "http://redacted@host")
// replaced, for a log line or an error. The user name goes too: it is often a token. The rule is textual, so
// that a value that does not even parse as a URL — the very value an error message is about — is redacted too.
func URL(s string) string {
	prefix, authority := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, authority = s[:i+3], s[i+3:]
	}
	end := len(authority)
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		end = i
	}
	at := strings.LastIndex(authority[:end], "@")
	if at < 0 {
		return s
	}
	return prefix + "redacted" + authority[at:]
}
