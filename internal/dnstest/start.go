package dnstest

import "testing"

// Start starts a server for the test, the way httptest.NewServer does: it fails the test when the server cannot
// start, and closes it when the test ends (a server that does not close in time is a test error: it leaks).
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatalf("starting the DNS test server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
