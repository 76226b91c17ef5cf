package sns

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// dedup remembers the MessageIds handled successfully: a bounded LRU whose
// entries also expire after a TTL. A MessageId being handled is "in flight":
// a concurrent delivery of the same ID waits for the first to finish, then is
// a duplicate (first succeeded) or takes over (first failed, so SNS's retry
// is not lost).
type dedup struct {
	mu       sync.Mutex
	capacity int
	ttl      time.Duration
	items    map[string]*list.Element
	order    *list.List // front = most recent
	inflight map[string]chan struct{}
}

type dedupEntry struct {
	key  string
	seen time.Time
}

func newDedup(capacity int, ttl time.Duration) *dedup {
	return &dedup{capacity: capacity, ttl: ttl, items: map[string]*list.Element{}, order: list.New(), inflight: map[string]chan struct{}{}}
}

// begin returns dup=true when key was handled successfully within the TTL.
// Otherwise the caller owns key until it calls end.
func (d *dedup) begin(ctx context.Context, key string) (dup bool, err error) {
	for {
		d.mu.Lock()
		if d.seenLocked(key) {
			d.mu.Unlock()
			return true, nil
		}
		ch, busy := d.inflight[key]
		if !busy {
			d.inflight[key] = make(chan struct{})
			d.mu.Unlock()
			return false, nil
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// end releases key; ok remembers it as handled.
func (d *dedup) end(key string, ok bool) {
	d.mu.Lock()
	ch := d.inflight[key]
	delete(d.inflight, key)
	if ok {
		d.addLocked(key)
	}
	d.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// seen reports whether key was remembered (no in-flight logic).
func (d *dedup) seen(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seenLocked(key)
}

// mark remembers key.
func (d *dedup) mark(key string) {
	d.mu.Lock()
	d.addLocked(key)
	d.mu.Unlock()
}

func (d *dedup) seenLocked(key string) bool {
	e, ok := d.items[key]
	if !ok {
		return false
	}
	if time.Since(e.Value.(*dedupEntry).seen) > d.ttl {
		d.order.Remove(e)
		delete(d.items, key)
		return false
	}
	return true
}

func (d *dedup) addLocked(key string) {
	if e, ok := d.items[key]; ok {
		e.Value.(*dedupEntry).seen = time.Now()
		d.order.MoveToFront(e)
		return
	}
	d.items[key] = d.order.PushFront(&dedupEntry{key: key, seen: time.Now()})
	for d.order.Len() > d.capacity {
		last := d.order.Back()
		d.order.Remove(last)
		delete(d.items, last.Value.(*dedupEntry).key)
	}
}

func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
