package elbv2fake

import "testing"

// Start starts a server with opts for the test, the way httptest.NewServer does: it fails the test when the
// server cannot start, and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("starting the ELBv2 fake: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the ELBv2 fake at %s: %v", s.URL(), err)
		}
	})
	return s
}
