package harness

// Ports on 127.0.0.1 for the processes the harness starts.

import (
	"fmt"
	"net"
	"strings"
)

// FreePort returns a port that was free a moment ago on 127.0.0.1 (callers retry on collision).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port, nil
}

// PortFree says whether a port can be listened on now.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// addrInUse says whether a log shows a bind collision.
func addrInUse(log string) bool {
	return strings.Contains(log, "address already in use") || strings.Contains(log, "EADDRINUSE")
}

// ---- every env of the process, killed on SIGINT/SIGTERM ----
