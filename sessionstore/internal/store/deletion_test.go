package store

import (
	"errors"
	"testing"
)

func TestPlanDelete(t *testing.T) {
	const now = int64(1_000)
	live := &Session{ID: "s", UserID: "12", FamilyID: "f", ExpiresAt: now + 1, AbsoluteExpiresAt: now + 10}
	idle := &Session{ID: "s", UserID: "12", FamilyID: "f", ExpiresAt: now, AbsoluteExpiresAt: now + 10}
	capped := &Session{ID: "s", UserID: "12", FamilyID: "f", ExpiresAt: now + 1, AbsoluteExpiresAt: now}
	plain := &Session{ID: "s", UserID: "12", ExpiresAt: now + 1, AbsoluteExpiresAt: now + 10}
	fam := &Family{ID: "f", UserID: "12", ExpiresAt: now + 1}
	famGone := &Family{ID: "f", UserID: "12", ExpiresAt: now}
	otherFam := &Family{ID: "f", UserID: "13", ExpiresAt: now + 1}
	del := func(withFamily bool, owner string) Deletion {
		return Deletion{WithFamily: withFamily, Owner: owner, Now: now}
	}
	cases := []struct {
		name  string
		sess  *Session
		famID string
		f     *Family
		d     Deletion
		want  DeletePlan
		err   error
	}{
		{"live alone", live, "", nil, del(false, ""), DeletePlan{RemoveSession: true, UserID: "12"}, nil},
		{"live with family", live, "f", fam, del(true, ""), DeletePlan{RevokeFamily: true, RemoveSession: true, UserID: "12"}, nil},
		{"live, family record gone", live, "f", nil, del(true, ""), DeletePlan{RevokeFamily: true, RemoveSession: true, UserID: "12"}, nil},
		{"live, family expired: the rest of it goes too", live, "f", famGone, del(true, ""), DeletePlan{RevokeFamily: true, RemoveSession: true, UserID: "12"}, nil},
		{"live without a family", plain, "", nil, del(true, ""), DeletePlan{RemoveSession: true, UserID: "12"}, nil},
		{"idled out alone", idle, "", nil, del(false, ""), DeletePlan{}, ErrNotFound},
		{"capped alone", capped, "", nil, del(false, ""), DeletePlan{}, ErrNotFound},
		{"idled out, live family", idle, "f", fam, del(true, ""), DeletePlan{RevokeFamily: true, RemoveSession: true, UserID: "12"}, nil},
		{"idled out, expired family", idle, "f", famGone, del(true, ""), DeletePlan{}, ErrNotFound},
		{"gone, live family", nil, "f", fam, del(true, ""), DeletePlan{RevokeFamily: true, UserID: "12"}, nil},
		{"gone, expired family", nil, "f", famGone, del(true, ""), DeletePlan{}, ErrNotFound},
		{"gone, family gone", nil, "f", nil, del(true, ""), DeletePlan{}, ErrNotFound},
		{"never stored", nil, "", nil, del(true, ""), DeletePlan{}, ErrNotFound},

		{"owner: own live", live, "f", fam, del(true, "12"), DeletePlan{RevokeFamily: true, RemoveSession: true, UserID: "12"}, nil},
		{"owner: own live alone", live, "", nil, del(false, "12"), DeletePlan{RemoveSession: true, UserID: "12"}, nil},
		{"owner: own idled out", idle, "f", fam, del(true, "12"), DeletePlan{RevokeFamily: true, RemoveSession: true, UserID: "12"}, nil},
		{"owner: own gone, live family", nil, "f", fam, del(true, "12"), DeletePlan{RevokeFamily: true, UserID: "12"}, nil},
		{"owner: other's live", live, "f", fam, del(true, "13"), DeletePlan{}, ErrNotFound},
		{"owner: other's live alone", live, "", nil, del(false, "13"), DeletePlan{}, ErrNotFound},
		{"owner: other's idled out", idle, "f", fam, del(true, "13"), DeletePlan{}, ErrNotFound},
		{"owner: other's gone, live family", nil, "f", fam, del(true, "13"), DeletePlan{}, ErrNotFound},
		{"owner: records that disagree", live, "f", otherFam, del(true, "12"), DeletePlan{}, ErrNotFound},
		{"owner: never stored", nil, "", nil, del(true, "12"), DeletePlan{}, ErrNotFound},
		{"owner: own gone, family gone", nil, "f", nil, del(true, "12"), DeletePlan{}, ErrNotFound},
	}
	for _, tc := range cases {
		got, err := PlanDelete(tc.sess, tc.famID, tc.f, tc.d)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%s: PlanDelete = %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}
