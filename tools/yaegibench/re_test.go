package yaegibench

import (
	"regexp"
	"testing"
)

func BenchmarkRegexpNative(b *testing.B) {
	cur := regexp.MustCompile(`^/(?:api/auth|admin|content-manager|content-type-builder|upload|users-permissions|i18n|email)(?:/|$)|[%\\A-Z]|//|/\.|^$|^[^/]|[^/]/$`)
	plain := regexp.MustCompile(`^(?:/[a-z0-9_~!$&'()*+,;=:@-][a-z0-9._~!$&'()*+,;=:@-]*)+$`)
	for _, c := range []struct {
		name string
		re   *regexp.Regexp
	}{{"current", cur}, {"plain-onepass", plain},
		{"routed-anchored", regexp.MustCompile(`^/(?:api/auth|admin|content-manager|content-type-builder|upload|users-permissions|i18n|email)(?:/|$)`)},
		{"routed-anchored-prefix", regexp.MustCompile(`^/(?:a(?:pi/auth|dmin)|content-(?:manager|type-builder)|upload|users-permissions|i18n|email)(?:/|$)`)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.re.MatchString("/api/articles/42")
			}
		})
	}
}
