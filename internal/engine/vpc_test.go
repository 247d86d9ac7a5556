package engine

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestVPCCache: mappings that start together read a VPC once; a failed read is not kept; forget (after a hard
// error) makes the next mapping read again.
func TestVPCCache(t *testing.T) {
	var c vpcCache
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}
	var reads atomic.Int32
	release := make(chan struct{})
	read := func(context.Context) ([]netip.Prefix, error) {
		reads.Add(1)
		<-release
		return want, nil
	}
	var wg, started sync.WaitGroup
	started.Add(20)
	for range 20 {
		wg.Go(func() {
			started.Done()
			got, err := c.get(context.Background(), "us-east-1  vpc-1", read)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("get = %v, %v; want %v", got, err, want)
			}
		})
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let them all reach the cache while the first read is blocked (not a timing assertion)
	close(release)
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("20 mappings starting together read the VPC %d times, want 1", n)
	}

	failing := func(context.Context) ([]netip.Prefix, error) { return nil, errors.New("UnauthorizedOperation") }
	if _, err := c.get(context.Background(), "us-east-1  vpc-2", failing); err == nil {
		t.Fatal("a failed read returned no error")
	}
	if got, err := c.get(context.Background(), "us-east-1  vpc-2", read); err != nil || !slices.Equal(got, want) {
		t.Errorf("after a failed read: %v, %v; want a new read", got, err)
	}

	before := reads.Load()
	if _, err := c.get(context.Background(), "us-east-1  vpc-1", read); err != nil || reads.Load() != before {
		t.Errorf("a cached VPC was read again (err %v)", err)
	}
	c.forget("us-east-1  vpc-1")
	if _, err := c.get(context.Background(), "us-east-1  vpc-1", read); err != nil || reads.Load() != before+1 {
		t.Errorf("after forget: %d reads, want %d (err %v)", reads.Load(), before+1, err)
	}
}
