//go:build !linux

package httpapi

import "time"

// cpuNow falls back to wall time where the process CPU clock is not read.
func cpuNow() time.Duration { return time.Duration(time.Now().UnixNano()) }
