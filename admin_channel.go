package accessproxy

import (
	"net"
	"net/http"
	"strings"
)

// The admin channel: blocked paths answer only to adminAllowFrom networks.

// clientIP is the address the request came from. Traefik removes X-Forwarded-For sent by hosts
// outside the entrypoint's forwardedHeaders.trustedIPs, so a value present here was set by a
// trusted proxy; its last entry is the peer that proxy saw.
func clientIP(req *http.Request) string {
	return clientIPFrom(req.Header.Get("X-Forwarded-For"), req.RemoteAddr)
}

// clientIPFrom is clientIP from the request's X-Forwarded-For and RemoteAddr.
func clientIPFrom(xff, remoteAddr string) string {
	if xff != "" {
		parts := strings.Split(xff, ",")
		if ip := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(ip) != nil {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// clientAddr is clientIP in canonical form, or "" when it is not an IP address (the session
// records it at login and at each touch: the store accepts only addresses).
func clientAddr(req *http.Request) string {
	return clientAddrFrom(req.Header.Get("X-Forwarded-For"), req.RemoteAddr)
}

func clientAddrFrom(xff, remoteAddr string) string {
	ip := net.ParseIP(clientIPFrom(xff, remoteAddr))
	if ip == nil {
		return ""
	}
	return ip.String()
}

// blocked says whether a normalized path is under one of blockedPaths.
func (m *Middleware) blocked(p string) bool {
	first := p
	if i := strings.IndexByte(p[1:], '/'); i >= 0 {
		first = p[:i+1]
	}
	if m.s.blockedFirst[first] {
		return true
	}
	for _, prefix := range m.s.blockedDeep {
		if hasPathPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func (m *Middleware) adminAllowed(req *http.Request) bool { return clientIn(req, m.s.adminNets) }

// clientIn says whether the request's client address (clientIP) is in one of nets.
func clientIn(req *http.Request, nets []*net.IPNet) bool {
	ip := net.ParseIP(clientIP(req))
	if ip == nil {
		return false
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}
