package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTouches(t *testing.T) {
	e := newEnv(t)
	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	b := e.create(createReq("12", "jwt-b", "", 60_000, false, time.Hour))
	short := e.create(createReq("12", "jwt-s", "", 1000, true, time.Hour))
	e.advance(30 * time.Second)
	unknown := strings.Repeat("A", idLen)
	status, raw := e.call("POST", "/v1/touches", map[string]any{"touches": []any{
		map[string]any{"id": a.ID, "host": "b.localhost", "idleTimeoutMs": 600_000, "sliding": true},
		map[string]any{"id": unknown, "host": "b.localhost"},
		map[string]any{"id": b.ID, "host": "c.localhost", "idleTimeoutMs": 600_000, "sliding": false},
		map[string]any{"id": short.ID, "host": "b.localhost", "idleTimeoutMs": 1000, "sliding": true},
		map[string]any{"id": "not-an-id", "host": "b.localhost"},
		map[string]any{"id": a.ID, "host": "d.localhost"},
	}})
	if status != http.StatusOK {
		t.Fatalf("POST /v1/touches = %d %s", status, raw)
	}
	if strings.Contains(string(raw), "strapiJwt") || strings.Contains(string(raw), "jwt-a") {
		t.Fatalf("a batch answer carries secrets: %s", raw)
	}
	var out TouchesBody
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Sessions) != 2 || out.Sessions[0].ID != a.ID || out.Sessions[1].ID != b.ID ||
		strings.Join(out.Missing, ",") != unknown+","+short.ID+",not-an-id" {
		t.Fatalf("answer: sessions %v missing %v", out.Sessions, out.Missing)
	}
	now := e.serverNow()
	got := out.Sessions[0] // both touches of a applied, in order: the sliding one, then d.localhost
	if got.ExpiresAt < now-5000+600_000 || got.HostsLastSeen["b.localhost"] == 0 || got.HostsLastSeen["d.localhost"] == 0 || got.StrapiJWT != nil {
		t.Fatalf("a after the batch: %+v", got)
	}
	if out.Sessions[1].ExpiresAt != b.ExpiresAt || out.Sessions[1].HostsLastSeen["c.localhost"] == 0 {
		t.Fatalf("non-sliding b: %+v", out.Sessions[1])
	}
	// What was answered is what is stored.
	if _, stored := e.get(a.ID); stored.ExpiresAt != got.ExpiresAt || stored.HostsLastSeen["d.localhost"] != got.HostsLastSeen["d.localhost"] {
		t.Fatalf("stored %+v, answered %+v", stored, got)
	}
	if status, _ := e.get(short.ID); status != http.StatusNotFound {
		t.Fatalf("an expired session was revived: %d", status)
	}
}

func TestTouchesBadInput(t *testing.T) {
	e := newEnv(t)
	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	one := func(fields map[string]any) map[string]any {
		m := map[string]any{"id": a.ID, "host": "a.localhost", "idleTimeoutMs": 1000, "sliding": true}
		for k, v := range fields {
			m[k] = v
		}
		return m
	}
	e.advance(time.Second) // a touch would now move lastSeenAt
	many := make([]any, 1001)
	for i := range many {
		many[i] = one(nil)
	}
	for name, body := range map[string]any{
		"none":           map[string]any{"touches": []any{}},
		"absent":         map[string]any{},
		"too many":       map[string]any{"touches": many},
		"bad host":       map[string]any{"touches": []any{one(nil), one(map[string]any{"host": "A.localhost:80"})}},
		"sliding no ttl": map[string]any{"touches": []any{one(map[string]any{"idleTimeoutMs": 0})}},
		"negative ttl":   map[string]any{"touches": []any{one(map[string]any{"idleTimeoutMs": -1, "sliding": false})}},
		"unknown field":  map[string]any{"touches": []any{one(map[string]any{"extra": 1})}},
		"not an array":   map[string]any{"touches": "x"},
	} {
		t.Run(name, func(t *testing.T) { e.wantError("POST", "/v1/touches", body, http.StatusBadRequest, "bad_request") })
	}
	status, raw := e.call("POST", "/v1/touches", map[string]any{"touches": []any{one(nil), one(map[string]any{"host": "A"})}})
	if status != http.StatusBadRequest || !strings.Contains(string(raw), "touches[1].host") {
		t.Fatalf("the message names the entry: %d %s", status, raw)
	}
	e.wantError("POST", "/v1/touches", `{"touches":[`+strings.Repeat(`{"id":"x","host":"a.localhost"},`, 20_000)+`]}`, http.StatusRequestEntityTooLarge, "too_large")
	if _, got := e.get(a.ID); got.LastSeenAt != a.LastSeenAt || len(got.HostsLastSeen) != 1 {
		t.Fatalf("a rejected batch wrote: %+v", got)
	}
	// 1000 touches of the longest host fit the body limit.
	long := make([]any, 1000)
	for i := range long {
		long[i] = one(map[string]any{"host": strings.Repeat("h", maxHost)})
	}
	e.must("POST", "/v1/touches", map[string]any{"touches": long}, http.StatusOK, nil)
	if _, got := e.get(a.ID); got.LastSeenAt == a.LastSeenAt || got.HostsLastSeen[strings.Repeat("h", maxHost)] == 0 {
		t.Fatalf("the batch of 1000 was not applied: %+v", got)
	}
}
