package accessproxy

import (
	"strings"
	"testing"
)

func TestRewriteKeepsOrderAndBytes(t *testing.T) {
	body := `{"jwt":"strapi","user":{"z":1,"a":"<b>","id":7},"extra":[1, 2.50],"refreshToken":"sr"}`
	members, err := splitObject([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := rewriteCredentials(members, "proxy", "apr_x")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"jwt":"proxy","user":{"z":1,"a":"<b>","id":7},"extra":[1, 2.50],"refreshToken":"apr_x"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	out, _ = rewriteCredentials(members, "proxy", "")
	if strings.Contains(string(out), "refreshToken") || !strings.HasPrefix(string(out), `{"jwt":"proxy","user"`) {
		t.Fatalf("without a proxy refresh token: %s", out)
	}
	// Duplicate keys: every jwt is replaced, and the last value is the one read.
	members, _ = splitObject([]byte(`{"jwt":"a","jwt":"b"}`))
	if v, _ := lastString(members, "jwt"); v != "b" {
		t.Fatalf("last jwt = %q", v)
	}
	out, _ = rewriteCredentials(members, "p", "")
	if string(out) != `{"jwt":"p","jwt":"p"}` {
		t.Fatalf("duplicates: %s", out)
	}
	for _, bad := range []string{`[]`, `{"a":1} x`, `{"a":}`, `"s"`, `{1:2}`} {
		if _, err := splitObject([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
