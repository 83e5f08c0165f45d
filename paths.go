package accessproxy

import (
	"net/url"
	"path"
	"strings"
)

// normalizePath puts a request path in the form Strapi's router matches it in: percent-decoded
// (repeatedly, so double encoding cannot hide a segment), lower-case (Koa routes ignore case),
// duplicate slashes folded, dot segments resolved and no trailing slash. Matching on this form
// means no spelling of a login or admin path slips past the proxy.
func normalizePath(p string) string {
	if isNormalPath(p) {
		return p
	}
	for i := 0; i < 3 && strings.IndexByte(p, '%') >= 0; i++ {
		dec, err := url.PathUnescape(p)
		if err != nil {
			break
		}
		p = dec
	}
	p = strings.ToLower(strings.ReplaceAll(p, "\\", "/"))
	return path.Clean("/" + p)
}

// pathSpecials are the characters normalizePath may change.
const pathSpecials = "%\\ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// isNormalPath is the cheap test that lets ordinary paths skip normalizePath's allocations.
func isNormalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if strings.ContainsAny(p, pathSpecials) {
		return false
	}
	if strings.Contains(p, "//") || strings.Contains(p, "/.") {
		return false
	}
	return len(p) == 1 || p[len(p)-1] != '/'
}

// hasPathPrefix reports whether p is prefix or lies below it, on a segment boundary.
func hasPathPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return p == prefix || (strings.HasPrefix(p, prefix) && p[len(prefix)] == '/')
}
