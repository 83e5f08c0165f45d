package accessproxy

import (
	"sync/atomic"
	"time"
)

// clock is the plugin's one source of the time, shared by the instances of one backend. In
// production it reads the system clock; tests move it forward (advance) instead of sleeping.
// The hot path compares fast-path deadlines with the system clock (time.Until, one native call),
// so remember stores them in system time and advance empties the fast maps: nothing remembered
// against the old reading outlives a jump.
type clock struct {
	offsetMs int64 // added to the system clock; only tests change it
}

func (c *clock) nowMs() int64 { return time.Now().UnixMilli() + atomic.LoadInt64(&c.offsetMs) }

func (c *clock) now() time.Time {
	return time.Now().Add(time.Duration(atomic.LoadInt64(&c.offsetMs)) * time.Millisecond)
}

// systemMs turns a time of this clock into the system clock's, for the fast path.
func (c *clock) systemMs(ms int64) int64 { return ms - atomic.LoadInt64(&c.offsetMs) }
