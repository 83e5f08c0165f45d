package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sub", "sessions.db"), Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return openTemp(t) })
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	start := time.Now()
	_, err = Open(path, Options{LockTimeout: 200 * time.Millisecond, ReadOnly: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("lock timeout not honoured")
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const now = int64(1_700_000_000_000)
	sess := &store.Session{ID: storetest.NewID(), UserID: "1", Host: "h", JWT: []byte{1, 2, 3},
		HostsLastSeen: map[string]int64{"h": now}, IdleTimeoutMs: 1000, Sliding: true, ExpiresAt: now + 1000, AbsoluteExpiresAt: now + 1000}
	if _, err := s.CreateSession(t.Context(), sess, nil, nil, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSession(t.Context(), sess, nil, nil, store.Limit{}); err == nil {
		t.Fatal("write after Close succeeded")
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	got, err := ro.GetSession(t.Context(), sess.ID, now)
	if err != nil || string(got.JWT) != "\x01\x02\x03" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if n, _ := ro.SessionCount(t.Context()); n != 1 {
		t.Fatalf("count after reopen = %d", n)
	}
}

func TestCorruptRecord(t *testing.T) {
	s := openTemp(t)
	defer func() { _ = s.Close() }()
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bSessions).Put([]byte("x"), []byte{sessionV1, 200})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(t.Context(), "x", 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("corrupt record: err = %v, want a storage error", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	f := &store.Family{ID: "f", UserID: "u", Host: "h", Audience: []string{"a", "b"}, DeviceID: "d-1", DeviceName: "Ana’s phone",
		LoginAddr: "2001:db8::1", RememberMe: true, JWT: []byte("j"), CreatedAt: 5, ExpiresAt: -1, RevalidatedAt: 7}
	gf, err := decodeFamily(encodeFamily(f))
	if err != nil || gf.ID != "f" || len(gf.Audience) != 2 || string(gf.JWT) != "j" || gf.Refresh != nil || gf.ExpiresAt != -1 || gf.RevalidatedAt != 7 ||
		gf.DeviceID != "d-1" || gf.DeviceName != "Ana’s phone" || gf.LoginAddr != "2001:db8::1" || !gf.RememberMe {
		t.Fatalf("family: %+v %v", gf, err)
	}
	tok := &store.RefreshToken{Hash: "h", FamilyID: "f", UserID: "u", SessionID: "s", ExpiresAt: 9, Spent: true, SpentAt: 1_700_000_000_123}
	gt, err := decodeToken(encodeToken(tok))
	if err != nil || *gt != *tok {
		t.Fatalf("token: %+v %v", gt, err)
	}
	sess := &store.Session{ID: "s", UserID: "u", Host: "h", DeviceID: "d-1", DeviceName: "Ana’s phone", LoginAddr: "192.0.2.1", LastAddr: "2001:db8::1",
		RememberMe: true, HostsLastSeen: map[string]int64{}, RevalidatedAt: 3}
	gs, err := decodeSession(encodeSession(sess))
	if err != nil || fmt.Sprintf("%+v", *gs) != fmt.Sprintf("%+v", *sess) {
		t.Fatalf("session: %+v %v", gs, err)
	}
	for _, b := range [][]byte{nil, {0}, {sessionV1}, {tokenV3 + 1}, append(encodeToken(tok), 0)} {
		if _, err := decodeToken(b); err == nil {
			t.Fatalf("decodeToken(%x) accepted", b)
		}
	}
	for _, b := range [][]byte{{familyV5 + 1}, append(encodeFamily(f), 0)} {
		if _, err := decodeFamily(b); err == nil {
			t.Fatalf("decodeFamily(%x) accepted", b)
		}
	}
}

// TestCodecReadsOlderVersions: records written before revalidatedAt, the token's userId, the
// device, the spend time, the addresses and rememberMe existed still decode, with those fields
// zero. An older record is the newest encoding of zero values for the fields added since, cut off
// (each zero field, a varint 0, an empty string or false, is one 0x00 byte), under the older
// version byte.
func TestCodecReadsOlderVersions(t *testing.T) {
	older := func(newest []byte, version byte, cut int) []byte {
		t.Helper()
		for _, c := range newest[len(newest)-cut:] {
			if c != 0 {
				t.Fatalf("the last %d bytes of %x are not zero fields", cut, newest)
			}
		}
		return append([]byte{version}, newest[1:len(newest)-cut]...)
	}
	sess := &store.Session{ID: "s", UserID: "u", FamilyID: "f", Host: "h", Audience: []string{"a"}, JWT: []byte("j"),
		UpstreamVersion: 2, CreatedAt: 1, LastSeenAt: 2, HostsLastSeen: map[string]int64{"h": 2}, IdleTimeoutMs: 3,
		Sliding: true, ExpiresAt: 4, AbsoluteExpiresAt: 5}
	for _, v := range []struct {
		version byte
		cut     int
	}{{sessionV1, 7}, {sessionV2, 6}, {sessionV3, 4}, {sessionV4, 1}} {
		gs, err := decodeSession(older(encodeSession(sess), v.version, v.cut))
		if err != nil || fmt.Sprintf("%+v", *gs) != fmt.Sprintf("%+v", *sess) {
			t.Fatalf("v%d session: %+v %v", v.version, gs, err)
		}
	}
	checked := *sess
	checked.RevalidatedAt = 9
	v2 := older(encodeSession(&checked), sessionV2, 6)
	if gs, err := decodeSession(v2); err != nil || gs.RevalidatedAt != 9 || gs.DeviceID != "" {
		t.Fatalf("v2 session with revalidatedAt: %+v %v", gs, err)
	}
	checked.DeviceID, checked.DeviceName = "d-1", "Ana’s phone"
	if gs, err := decodeSession(older(encodeSession(&checked), sessionV3, 4)); err != nil || gs.DeviceName != "Ana’s phone" ||
		gs.LoginAddr != "" || gs.LastAddr != "" || gs.RememberMe {
		t.Fatalf("v3 session with a device: %+v %v", gs, err)
	}

	f := &store.Family{ID: "f", UserID: "u", Host: "h", Audience: []string{"a"}, CreatedAt: 1, ExpiresAt: 2}
	for _, v := range []struct {
		version byte
		cut     int
	}{{familyV1, 6}, {familyV2, 5}, {familyV3, 3}, {familyV4, 1}} {
		if gf, err := decodeFamily(older(encodeFamily(f), v.version, v.cut)); err != nil || fmt.Sprintf("%+v", *gf) != fmt.Sprintf("%+v", *f) {
			t.Fatalf("v%d family: %+v %v", v.version, gf, err)
		}
	}

	tok := &store.RefreshToken{Hash: "h", FamilyID: "f", SessionID: "s", ExpiresAt: 9, Spent: true}
	if gt, err := decodeToken(older(encodeToken(tok), tokenV1, 2)); err != nil || *gt != *tok {
		t.Fatalf("v1 token: %+v %v", gt, err)
	}
	named := *tok
	named.UserID = "u"
	if gt, err := decodeToken(older(encodeToken(&named), tokenV2, 1)); err != nil || *gt != named || gt.SpentAt != 0 {
		t.Fatalf("v2 token: %+v %v", gt, err)
	}

	// An older version byte with the newer fields still there is corrupt, and so is a newer version.
	for _, b := range [][]byte{{sessionV5 + 1}, append([]byte{sessionV4}, encodeSession(sess)[1:]...), append(older(encodeSession(sess), sessionV1, 7), 0)} {
		if _, err := decodeSession(b); err == nil {
			t.Fatalf("decodeSession(%x) accepted", b)
		}
	}
}

// TestUpgradeIndexesTokensBySession: a file from before tokens_by_session existed gets the index
// filled at the first read-write open, so a session rotated away before the upgrade still revokes
// its family; a read-only open does not need it.
func TestUpgradeIndexesTokensBySession(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const now = int64(1_700_000_000_000)
	sess := &store.Session{ID: storetest.NewID(), UserID: "1", Host: "h", JWT: []byte{1}, HostsLastSeen: map[string]int64{"h": now},
		IdleTimeoutMs: 1000, Sliding: true, CreatedAt: now, ExpiresAt: now + 1000, AbsoluteExpiresAt: now + 60_000}
	f := &store.Family{ID: storetest.NewID(), UserID: "1", Host: "h", CreatedAt: now, ExpiresAt: now + 60_000}
	sess.FamilyID = f.ID
	tok := &store.RefreshToken{Hash: storetest.NewHash(), FamilyID: f.ID, SessionID: sess.ID, ExpiresAt: f.ExpiresAt}
	if _, err := s.CreateSession(t.Context(), sess, f, tok, store.Limit{}); err != nil {
		t.Fatal(err)
	}
	next := &store.Session{}
	res, err := s.RotateRefresh(t.Context(), store.Rotation{TokenHash: tok.Hash, NewTokenHash: storetest.NewHash(), Now: now + 1,
		NewSession: func(f *store.Family) (*store.Session, error) {
			*next = *sess
			next.ID, next.CreatedAt = storetest.NewID(), now+1
			return next, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	// Make it an old file: no index bucket.
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bTokSess) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of an old file: %v", err)
	}
	if l, err := ro.ListUserSessions(t.Context(), "1", now+1); err != nil || len(l) != 1 {
		t.Fatalf("list on an old file = %v, %v", l, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	rev, err := s.DeleteSession(t.Context(), sess.ID, store.Deletion{WithFamily: true, Now: now + 2})
	if err != nil || rev.FamilyID != f.ID || len(rev.SessionIDs) != 1 || rev.SessionIDs[0] != res.Session.ID {
		t.Fatalf("revoke rotated-away after upgrade = %+v, %v", rev, err)
	}
}
