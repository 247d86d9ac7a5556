//go:build !unix

package metrics

// openFileLimit is unknown here: Serve uses DefaultMaxConns.
func openFileLimit() uint64 { return 0 }
