package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func deviceReq(user, jwt, refreshToken, device, name string) map[string]any {
	q := createReq(user, jwt, refreshToken, 60_000, true, time.Hour)
	q["deviceId"], q["deviceName"] = device, name
	return q
}

// TestDeviceRoundTrip: the device a login names is answered by create, get, touch and list, kept by
// every session its refresh family mints, and "" when the login named none (the fields are then
// still present).
func TestDeviceRoundTrip(t *testing.T) {
	e := newEnv(t)
	name := strings.Repeat("é", 127) + "x" // 255 bytes: the longest accepted
	s := e.create(deviceReq("12", "eyJ.a", "rt-1", "5b0f7e3c-9d2a-4c61-8e47-1a2b3c4d5e6f", name))
	if s.DeviceID != "5b0f7e3c-9d2a-4c61-8e47-1a2b3c4d5e6f" || s.DeviceName != name {
		t.Fatalf("created = %q %q", s.DeviceID, s.DeviceName)
	}
	if st, got := e.get(s.ID); st != 200 || got.DeviceID != s.DeviceID || got.DeviceName != name {
		t.Fatalf("get = %d %+v", st, got)
	}
	var touched SessionBody
	e.must("POST", "/v1/sessions/"+s.ID+"/touch", map[string]any{"host": "b.localhost", "idleTimeoutMs": 60_000, "sliding": true}, 200, &touched)
	if touched.Session.DeviceID != s.DeviceID {
		t.Fatalf("touch = %+v", touched.Session)
	}
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-1", "rt-2"), 200, &rot)
	if rot.Session.DeviceID != s.DeviceID || rot.Session.DeviceName != name {
		t.Fatalf("rotated session = %q %q, want the login's device", rot.Session.DeviceID, rot.Session.DeviceName)
	}

	plain := e.create(createReq("12", "eyJ.b", "", 60_000, true, time.Hour))
	status, raw := e.call("GET", "/v1/users/12/sessions", nil)
	var list SessionsBody
	if status != 200 || json.Unmarshal(raw, &list) != nil || len(list.Sessions) != 2 {
		t.Fatalf("list = %d %s", status, raw)
	}
	if l := list.Sessions; l[0].ID != rot.Session.ID || l[0].DeviceName != name || l[1].ID != plain.ID || l[1].DeviceID != "" {
		t.Fatalf("list = %+v / %+v", l[0], l[1])
	}
	if !strings.Contains(string(raw), `"deviceId":"","deviceName":""`) {
		t.Fatalf("a session without a device must carry the fields empty: %s", raw)
	}
}

// TestDeleteDeviceSessions: DELETE /v1/users/{userId}/sessions?deviceId= revokes only that user's
// sessions of that device, with their refresh families (also a family whose session idled out),
// and answers like the DELETE of all of a user's sessions.
func TestDeleteDeviceSessions(t *testing.T) {
	e := newEnv(t)
	const dev = "Ana’s iPhone / Safari & co" // spaces, '/', '&' and non-ASCII travel escaped in the query
	a := e.create(deviceReq("7", "eyJ.a", "rt-a", dev, "iPhone"))
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("rt-a", "rt-a2"), 200, &rot)
	b := e.create(deviceReq("7", "eyJ.b", "", dev, "iPhone"))
	c := e.create(deviceReq("7", "eyJ.c", "rt-c", "pixel", "Pixel"))
	d := e.create(createReq("7", "eyJ.d", "", 60_000, true, time.Hour))
	other := e.create(deviceReq("70", "eyJ.e", "rt-e", dev, "iPhone"))

	path := "/v1/users/7/sessions?deviceId=" + url.QueryEscape(dev)
	got, keys := e.revoke(path)
	wantRevoked(t, "delete device", got, 2, "", rot.Session.ID, b.ID)
	if _, ok := keys["userId"]; ok || len(keys) != 2 {
		t.Fatalf("delete device: keys %v, want deleted, sessionIds", keys)
	}
	for _, id := range []string{a.ID, rot.Session.ID, b.ID} {
		if st, _ := e.get(id); st != 404 {
			t.Fatalf("session %s of the device = %d", id, st)
		}
	}
	e.wantError("POST", "/v1/refresh", refreshReq("rt-a2", "rt-a3"), 404, "not_found")
	for _, id := range []string{c.ID, d.ID, other.ID} {
		if st, _ := e.get(id); st != 200 {
			t.Fatalf("session %s of another device or user = %d", id, st)
		}
	}
	e.must("POST", "/v1/refresh", refreshReq("rt-c", "rt-c2"), 200, nil)
	e.must("POST", "/v1/refresh", refreshReq("rt-e", "rt-e2"), 200, nil)
	if e.metric("sessionstore_sessions_revoked_total") != "2" {
		t.Fatalf("revoked_total = %s", e.metric("sessionstore_sessions_revoked_total"))
	}
	status, raw := e.call("DELETE", path, nil)
	if status != 200 || strings.TrimSpace(string(raw)) != `{"deleted":0,"sessionIds":[]}` {
		t.Fatalf("second delete device = %d %s", status, raw)
	}

	// A device whose session idled out still has a live refresh family: the logout ends it.
	f := e.create(deviceReq("7", "eyJ.f", "rt-f", "tablet", "Tab"))
	e.advance(61 * time.Second)
	got, _ = e.revoke("/v1/users/7/sessions?deviceId=tablet")
	wantRevoked(t, "delete an idled-out device", got, 0, "", f.ID)
	e.wantError("POST", "/v1/refresh", refreshReq("rt-f", "rt-f2"), 404, "not_found")
	// Another device's family whose session idled out as well is untouched: it still mints.
	e.must("POST", "/v1/refresh", refreshReq("rt-c2", "rt-c3"), 200, nil)
}
