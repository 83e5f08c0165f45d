package accessproxy

import (
	"strings"
)

// audience is a user's allowed hosts, parsed once per cached session.
// Entries: exact hosts, `*.example.com` (exactly one more label) and `*` (any host).
type audience struct {
	any      bool
	exact    map[string]bool
	suffixes []string
}

// splitAudience splits the user's audience attribute on commas and white space.
func splitAudience(v string) []string {
	return strings.FieldsFunc(strings.ToLower(v), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == ';'
	})
}

func parseAudience(entries []string) audience {
	a := audience{exact: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(e)), ".")
		switch {
		case e == "":
		case e == "*":
			a.any = true
		case strings.HasPrefix(e, "*.") && len(e) > 2:
			a.suffixes = append(a.suffixes, e[1:])
		default:
			a.exact[e] = true
		}
	}
	return a
}

func (a audience) allows(host string) bool {
	if a.any || a.exact[host] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) {
			label := host[:len(host)-len(s)]
			if label != "" && strings.IndexByte(label, '.') < 0 {
				return true
			}
		}
	}
	return false
}

// requestHost is the request's host without port, lower-case, without a trailing dot.
func requestHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
