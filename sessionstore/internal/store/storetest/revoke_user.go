package storetest

import (
	"slices"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// testDeleteUserEndsEveryFamily: DeleteUserSessions is what a password change uses (the plugin
// ends every session of the user, then creates the one for the new password): every session of
// the user goes, and with them every refresh family in any state (live, rotated, its session idled
// out and swept, grace-minted siblings), so no refresh token of the user mints anything afterwards;
// other users keep theirs, the feed names the user, and a login made afterwards stays.
func testDeleteUserEndsEveryFamily(t *testing.T, b store.Backend) {
	rotate := func(h, next string, now, graceMs int64) store.RotateResult {
		t.Helper()
		r, err := rotateGrace(b, h, next, now, graceMs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	login := func(user string, idle int64, family bool) (*store.Session, *store.RefreshToken) {
		s := newSession(user, t0, idle, t0+600_000)
		if !family {
			mustCreate(t, b, s, nil, nil)
			return s, nil
		}
		f, tok := withFamily(s, t0+600_000)
		mustCreate(t, b, s, f, tok)
		return s, tok
	}
	a, atok := login("12", 60_000, true)
	_, btok := login("12", 60_000, true)
	b2tok := NewHash()
	b2 := rotate(btok.Hash, b2tok, t0+1, 0) // b is replaced
	_, ctok := login("12", 1_000, true)     // idles out and is swept; its family lives on
	_, gtok := login("12", 60_000, true)
	g1 := rotate(gtok.Hash, NewHash(), t0+2, 10_000)
	g2 := rotate(gtok.Hash, NewHash(), t0+3, 10_000) // a grace sibling of g1
	d, _ := login("12", 60_000, false)
	e, etok := login("13", 60_000, true)
	noErr(t)(b.Sweep(ctx, t0+1_000, 100))
	now := t0 + 2_000

	rev, err := b.DeleteUserSessions(ctx, "12", now)
	if err != nil || !revoked(rev, "12", "", 5, a.ID, b2.Session.ID, g1.Session.ID, g2.Session.ID, d.ID) {
		t.Fatalf("DeleteUserSessions = %+v, %v", rev, err)
	}
	if got := liveIDs(t, b, "12", now); len(got) != 0 {
		t.Fatalf("sessions left: %v", got)
	}
	for _, h := range []string{atok.Hash, btok.Hash, b2tok, ctok.Hash, gtok.Hash} {
		_, err := rotateGrace(b, h, NewHash(), now+1, 10_000)
		wantErr(t, "a refresh token of the user after the revocation", err, store.ErrNotFound)
	}
	if last := allChanges(t, b).Changes; len(last) == 0 || last[len(last)-1].Kind != store.ChangeUser ||
		last[len(last)-1].UserID != "12" || !slices.Equal(last[len(last)-1].SessionIDs, rev.SessionIDs) {
		t.Fatalf("last change = %+v, want the user record of %v", last, rev.SessionIDs)
	}

	// The other user is untouched; the login after the password change lives.
	mustGet(t, b, e.ID, now+1)
	rotate(etok.Hash, NewHash(), now+1, 0)
	fresh, ftok := login("12", 60_000, true)
	if got := liveIDs(t, b, "12", now+1); !slices.Equal(got, []string{fresh.ID}) {
		t.Fatalf("sessions after the new login: %v, want %s", got, fresh.ID)
	}
	rotate(ftok.Hash, NewHash(), now+2, 0)
}
