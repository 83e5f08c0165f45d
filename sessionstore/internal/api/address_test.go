package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAddressesAndRememberMe: the login's address and rememberMe are answered by create, get,
// touch, the batch touch, rotate and list (addresses in netip's canonical form); a touch naming an
// address sets lastAddr only; a rotation's session gets the address given to rotate, else the
// family's login address, and the family's rememberMe. Without them the fields are "" and false.
func TestAddressesAndRememberMe(t *testing.T) {
	e := newEnv(t)
	q := createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour)
	q["clientAddr"], q["rememberMe"] = "2001:DB8:0::1", true
	s := e.create(q)
	if s.LoginAddr != "2001:db8::1" || s.LastAddr != "2001:db8::1" || !s.RememberMe {
		t.Fatalf("created = %q %q %v", s.LoginAddr, s.LastAddr, s.RememberMe)
	}
	if st, got := e.get(s.ID); st != 200 || got.LoginAddr != "2001:db8::1" || !got.RememberMe {
		t.Fatalf("get = %d %+v", st, got)
	}
	touch := func(addr string) *Session {
		t.Helper()
		body := map[string]any{"host": "a.localhost", "idleTimeoutMs": 60_000, "sliding": true}
		if addr != "" {
			body["clientAddr"] = addr
		}
		var out SessionBody
		e.must("POST", "/v1/sessions/"+s.ID+"/touch", body, 200, &out)
		return out.Session
	}
	if got := touch(""); got.LastAddr != "2001:db8::1" {
		t.Fatalf("touch without an address: lastAddr %q", got.LastAddr)
	}
	if got := touch("192.0.2.7"); got.LoginAddr != "2001:db8::1" || got.LastAddr != "192.0.2.7" {
		t.Fatalf("touch from 192.0.2.7: %q %q", got.LoginAddr, got.LastAddr)
	}
	var batch TouchesBody
	e.must("POST", "/v1/touches", map[string]any{"touches": []map[string]any{
		{"id": s.ID, "host": "b.localhost", "idleTimeoutMs": 60_000, "sliding": true, "clientAddr": "::ffff:198.51.100.9"},
	}}, 200, &batch)
	if len(batch.Sessions) != 1 || batch.Sessions[0].LastAddr != "::ffff:198.51.100.9" || !batch.Sessions[0].RememberMe {
		t.Fatalf("batch touch = %+v", batch)
	}

	var rot refreshBody
	r := refreshReq("rt-1", "rt-2")
	r["clientAddr"] = "203.0.113.5"
	e.must("POST", "/v1/refresh", r, 200, &rot)
	if rot.Session.LoginAddr != "203.0.113.5" || rot.Session.LastAddr != "203.0.113.5" || !rot.Session.RememberMe {
		t.Fatalf("rotated from 203.0.113.5 = %+v", rot.Session)
	}
	e.must("POST", "/v1/refresh", refreshReq("rt-2", "rt-3"), 200, &rot)
	if rot.Session.LoginAddr != "2001:db8::1" || rot.Session.LastAddr != "2001:db8::1" || !rot.Session.RememberMe {
		t.Fatalf("rotated without an address = %+v, want the family's login address", rot.Session)
	}

	plain := e.create(createReq("12", "eyJ.b", "", 60_000, true, time.Hour))
	status, raw := e.call("GET", "/v1/users/12/sessions", nil)
	var list SessionsBody
	if status != 200 || json.Unmarshal(raw, &list) != nil || len(list.Sessions) != 2 {
		t.Fatalf("list = %d %s", status, raw)
	}
	if l := list.Sessions; l[0].ID != rot.Session.ID || l[0].LoginAddr != "2001:db8::1" || !l[0].RememberMe || l[1].ID != plain.ID {
		t.Fatalf("list = %+v / %+v", l[0], l[1])
	}
	if !strings.Contains(string(raw), `"loginAddr":"","lastAddr":"","rememberMe":false`) {
		t.Fatalf("a session without them must carry the fields empty: %s", raw)
	}
}

// TestClientAddrBadInput: a clientAddr that is not an IPv4/IPv6 address (or has a zone) is 400 on
// create, touch, the batch touch (the whole call: nothing touched) and rotate.
func TestClientAddrBadInput(t *testing.T) {
	e := newEnv(t)
	s := e.create(createReq("12", "eyJ.a", "rt-1", 60_000, true, time.Hour))
	for _, bad := range []any{"localhost", "1.2.3", "1.2.3.4:80", "[::1]", "fe80::1%eth0", " 1.2.3.4", "01.2.3.4", 7, true} {
		q := createReq("12", "eyJ.b", "", 60_000, true, time.Hour)
		q["clientAddr"] = bad
		e.wantError("POST", "/v1/sessions", q, 400, "bad_request")
		e.wantError("POST", "/v1/sessions/"+s.ID+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 60_000, "sliding": true, "clientAddr": bad}, 400, "bad_request")
		e.wantError("POST", "/v1/touches", map[string]any{"touches": []map[string]any{
			{"id": s.ID, "host": "b.localhost", "idleTimeoutMs": 60_000, "sliding": true, "clientAddr": "192.0.2.1"},
			{"id": s.ID, "host": "c.localhost", "idleTimeoutMs": 60_000, "sliding": true, "clientAddr": bad},
		}}, 400, "bad_request")
		r := refreshReq("rt-1", "rt-2")
		r["clientAddr"] = bad
		e.wantError("POST", "/v1/refresh", r, 400, "bad_request")
	}
	if st, got := e.get(s.ID); st != 200 || got.LastAddr != "" || len(got.HostsLastSeen) != 1 {
		t.Fatalf("after the refused calls: %d %+v", st, got)
	}
	if e.count() != 1 {
		t.Fatalf("sessions = %d, want 1", e.count())
	}
}
