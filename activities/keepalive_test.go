package activities

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The waits heartbeat on their own while a describe call is slow, so the
// server can use a short heartbeat timeout (WaitHeartbeatTimeout) to notice a
// dead worker without failing a live wait whose cloud calls are being
// retried; each pulse repeats the latest progress, and stop ends them.
func TestKeepAlivePulsesWithTheLatestDetail(t *testing.T) {
	var mu sync.Mutex
	var beats []any
	oldEvery, oldIs, oldRec := keepAliveEvery, isActivity, recordHeartbeat
	t.Cleanup(func() { keepAliveEvery, isActivity, recordHeartbeat = oldEvery, oldIs, oldRec })
	keepAliveEvery = 5 * time.Millisecond
	isActivity = func(context.Context) bool { return true }
	recordHeartbeat = func(_ context.Context, d ...any) { mu.Lock(); beats = append(beats, d[0]); mu.Unlock() }
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(beats) }

	p := keepAlive(context.Background())
	require.Eventually(t, func() bool { return count() >= 3 }, 5*time.Second, time.Millisecond, "pulses while nothing else heartbeats")
	p.beat("pending")
	n := count()
	require.Eventually(t, func() bool { return count() >= n+3 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	require.Equal(t, "waiting", beats[0])
	require.Equal(t, "pending", beats[len(beats)-1], "later pulses repeat the latest progress")
	mu.Unlock()
	p.stop()
	time.Sleep(20 * time.Millisecond) // a pulse in flight may land
	n = count()
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, n, count(), "no pulse after stop")
}
