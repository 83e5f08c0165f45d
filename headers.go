package accessproxy

import (
	"net/textproto"
	"sort"
	"strings"
)

// spoofableHeaders lists the header keys, as Go's server stores them, that a client may not send:
// the identity headers and every upstreamHeaders key, in each spelling an upstream could read as
// that header. Case is folded by canonicalization already; `_` for `-` is not (CGI, WSGI and PHP
// read both as HTTP_X_AUTH_USER_ID), so every mix of the two separators is listed.
func spoofableHeaders(upstream map[string]string) []string {
	names := []string{headerUserID, headerSessionID}
	for k := range upstream {
		names = append(names, k)
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		for _, v := range separatorSpellings(strings.ToLower(n)) {
			k := textproto.CanonicalMIMEHeaderKey(v)
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// maxSpellingSeparators bounds the 2^n spellings of one name (a name with more separators gets
// the all-dash and all-underscore spellings only).
const maxSpellingSeparators = 6

// separatorSpellings returns name with each of its '-' and '_' as either.
func separatorSpellings(name string) []string {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	if len(seps) > maxSpellingSeparators {
		return []string{strings.ReplaceAll(name, "_", "-"), strings.ReplaceAll(name, "-", "_")}
	}
	out := make([]string, 0, 1<<len(seps))
	for mask := 0; mask < 1<<len(seps); mask++ {
		b := []byte(name)
		for j, at := range seps {
			if mask&(1<<j) != 0 {
				b[at] = '_'
			} else {
				b[at] = '-'
			}
		}
		out = append(out, string(b))
	}
	return out
}
