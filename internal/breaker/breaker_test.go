package breaker

import (
	"sync"
	"testing"
	"time"
)

func TestBreakerOpensAfterThresholdAndProbesAfterCooldown(t *testing.T) {
	b := New(3, time.Second)
	now := time.Unix(1000, 0)
	for i := range 3 {
		probe, ok := b.Allow(now)
		if !ok || probe {
			t.Fatalf("call %d: allow = (probe %v, ok %v), want a plain call", i, probe, ok)
		}
		opened := b.Failure(probe, now)
		if opened != (i == 2) {
			t.Fatalf("call %d: opened = %v", i, opened)
		}
	}
	if !b.Open() {
		t.Fatal("breaker closed after 3 failures")
	}
	if _, ok := b.Allow(now.Add(999 * time.Millisecond)); ok {
		t.Fatal("open breaker allowed a call within the cooldown")
	}
	after := now.Add(time.Second)
	probe, ok := b.Allow(after)
	if !ok || !probe {
		t.Fatalf("after the cooldown: allow = (probe %v, ok %v), want the probe", probe, ok)
	}
	if _, ok := b.Allow(after); ok {
		t.Fatal("a second call went out while the probe was in flight")
	}
	if b.Failure(true, after) {
		t.Fatal("a failed probe reported opening the breaker again")
	}
	if _, ok := b.Allow(after.Add(500 * time.Millisecond)); ok {
		t.Fatal("a failed probe did not start another cooldown")
	}
	probe, ok = b.Allow(after.Add(time.Second))
	if !ok || !probe {
		t.Fatal("no probe after the second cooldown")
	}
	if !b.Success(true) {
		t.Fatal("a good probe did not report closing the breaker")
	}
	if b.Open() {
		t.Fatal("breaker open after a good probe")
	}
	if probe, ok := b.Allow(after.Add(time.Second)); !ok || probe {
		t.Fatal("closed breaker refused a call or called it a probe")
	}
}

func TestBreakerSuccessResetsTheCount(t *testing.T) {
	b := New(2, time.Second)
	now := time.Unix(1000, 0)
	b.Failure(false, now)
	b.Success(false)
	if b.Failure(false, now) || b.Open() {
		t.Fatal("failures separated by a success opened the breaker")
	}
}

func TestBreakerReleaseLetsAnotherCallProbe(t *testing.T) {
	b := New(1, time.Second)
	now := time.Unix(1000, 0)
	b.Failure(false, now)
	later := now.Add(time.Second)
	probe, ok := b.Allow(later)
	if !ok || !probe {
		t.Fatal("no probe after the cooldown")
	}
	b.Release(true)
	if probe, ok := b.Allow(later); !ok || !probe {
		t.Fatal("a released probe did not let the next call probe")
	}
}

func TestBreakerOneProbeUnderConcurrency(t *testing.T) {
	b := New(1, time.Millisecond)
	now := time.Unix(1000, 0)
	b.Failure(false, now)
	later := now.Add(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	probes := 0
	for range 64 {
		wg.Go(func() {
			if probe, ok := b.Allow(later); ok && probe {
				mu.Lock()
				probes++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if probes != 1 {
		t.Fatalf("%d probes went out at once, want 1", probes)
	}
}
