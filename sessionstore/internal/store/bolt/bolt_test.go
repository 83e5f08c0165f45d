package bolt

import (
	"errors"
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
	if err := s.CreateSession(t.Context(), sess, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(t.Context(), sess, nil, nil); err == nil {
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
	f := &store.Family{ID: "f", UserID: "u", Host: "h", Audience: []string{"a", "b"}, JWT: []byte("j"), CreatedAt: 5, ExpiresAt: -1}
	gf, err := decodeFamily(encodeFamily(f))
	if err != nil || gf.ID != "f" || len(gf.Audience) != 2 || string(gf.JWT) != "j" || gf.Refresh != nil || gf.ExpiresAt != -1 {
		t.Fatalf("family: %+v %v", gf, err)
	}
	tok := &store.RefreshToken{Hash: "h", FamilyID: "f", SessionID: "s", ExpiresAt: 9, Spent: true}
	gt, err := decodeToken(encodeToken(tok))
	if err != nil || *gt != *tok {
		t.Fatalf("token: %+v %v", gt, err)
	}
	for _, b := range [][]byte{nil, {0}, {sessionV1}, append(encodeToken(tok), 0)} {
		if _, err := decodeToken(b); err == nil {
			t.Fatalf("decodeToken(%x) accepted", b)
		}
	}
}
