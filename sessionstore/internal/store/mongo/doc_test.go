package mongo

import (
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// TestDocsRoundTrip: the device, the addresses, rememberMe and the spend time survive BSON;
// documents written before they existed (no deviceId, deviceName, loginAddr, lastAddr, rememberMe,
// spentAt) decode with them zero. Needs no server.
func TestDocsRoundTrip(t *testing.T) {
	roundTrip := func(in, out any) {
		t.Helper()
		raw, err := bson.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := bson.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
	sess := &store.Session{ID: "s", UserID: "12", FamilyID: "f", Host: "a.localhost", Audience: []string{"a.localhost"},
		DeviceID: "dev-1", DeviceName: "Ana’s iPhone", LoginAddr: "192.0.2.1", LastAddr: "2001:db8::1", RememberMe: true,
		JWT: []byte("j"), UpstreamVersion: 1, CreatedAt: 1, LastSeenAt: 2,
		HostsLastSeen: map[string]int64{"a.localhost": 2}, IdleTimeoutMs: 3, Sliding: true, ExpiresAt: 4, AbsoluteExpiresAt: 5, RevalidatedAt: 6}
	var sd sessionDoc
	roundTrip(toSessionDoc(sess), &sd)
	if g, w := fmt.Sprintf("%+v", *sd.session()), fmt.Sprintf("%+v", *sess); g != w {
		t.Fatalf("session:\n got  %s\n want %s", g, w)
	}
	f := &store.Family{ID: "f", UserID: "12", Host: "a.localhost", Audience: []string{}, DeviceID: "dev-1", DeviceName: "Ana’s iPhone",
		LoginAddr: "192.0.2.1", RememberMe: true, JWT: []byte("j"), CreatedAt: 1, ExpiresAt: 2, RevalidatedAt: 3}
	var fd familyDoc
	roundTrip(toFamilyDoc(f), &fd)
	if g, w := fmt.Sprintf("%+v", *fd.family()), fmt.Sprintf("%+v", *f); g != w {
		t.Fatalf("family:\n got  %s\n want %s", g, w)
	}
	tok := &store.RefreshToken{Hash: "h", FamilyID: "f", UserID: "12", SessionID: "s", ExpiresAt: 9, Spent: true, SpentAt: 1_700_000_000_123}
	var td tokenDoc
	roundTrip(toTokenDoc(tok), &td)
	if *td.token() != *tok {
		t.Fatalf("token: %+v, want %+v", *td.token(), *tok)
	}

	// Documents of an earlier version.
	var old sessionDoc
	roundTrip(bson.D{{Key: "_id", Value: "s"}, {Key: "userId", Value: "12"}, {Key: "expiresAt", Value: bson.DateTime(4)}}, &old)
	if s := old.session(); s.ID != "s" || s.DeviceID != "" || s.DeviceName != "" || s.LoginAddr != "" || s.LastAddr != "" || s.RememberMe {
		t.Fatalf("old session: %+v", s)
	}
	var oldF familyDoc
	roundTrip(bson.D{{Key: "_id", Value: "f"}, {Key: "userId", Value: "12"}}, &oldF)
	if f := oldF.family(); f.ID != "f" || f.DeviceID != "" || f.DeviceName != "" || f.LoginAddr != "" || f.RememberMe {
		t.Fatalf("old family: %+v", f)
	}
	var oldT tokenDoc
	roundTrip(bson.D{{Key: "_id", Value: "h"}, {Key: "familyId", Value: "f"}, {Key: "spent", Value: true}}, &oldT)
	if tk := oldT.token(); !tk.Spent || tk.SpentAt != 0 {
		t.Fatalf("old token: %+v", tk)
	}
	// Omitted when zero, so that older readers and sparse queries see no field.
	raw, err := bson.Marshal(toSessionDoc(&store.Session{ID: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deviceId", "deviceName", "loginAddr", "lastAddr", "rememberMe"} {
		if _, err := bson.Raw(raw).LookupErr(k); err == nil {
			t.Fatalf("a session without a device, addresses or rememberMe stores %s", k)
		}
	}
}
