package accessproxy

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStore is an in-memory stand-in for sessionstore's HTTP API (docs/store-api.md) for the
// plugin's unit tests. The real service is exercised by its own tests and by the e2e suite.
type fakeStore struct {
	mu       sync.Mutex
	sessions map[string]*storeSession
	families map[string]*fakeFamily
	tokens   map[string]*fakeRefresh // by hash
	counters map[string]*counterResponse
	calls    map[string]int
	down     bool
	// held, when set, holds the next session read after the store has answered it (the answer
	// is read under the lock, written once release is closed): a read in flight.
	held    chan string
	release chan struct{}
	// clock is the plugin's, once a harness wires it: the store then ages with the plugin.
	clock *clock
	srv   *httptest.Server
	// changes is the change feed (GET /v1/changes); resyncNext makes the next poll a resync;
	// noFeed answers the feed 404, as a store without one would.
	changes    []changeRecord
	resyncNext bool
	noFeed     bool
	prefix     string // the harness's store URL path: "/t<random>"
	touched    int    // sessions touched through /v1/touches
	noTouches  bool   // answer /v1/touches 404, as a store from before batching
}

// record appends a change to the feed (under f.mu).
func (f *fakeStore) record(kind, userID string, ids []string) {
	if ids == nil {
		ids = []string{}
	}
	f.changes = append(f.changes, changeRecord{Seq: int64(len(f.changes) + 1), Kind: kind, SessionIDs: ids, UserID: userID})
}

// serveChanges is the long-poll: it waits (briefly, outside the lock) for a change after since.
func (f *fakeStore) serveChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	deadline := time.Now().Add(30 * time.Millisecond)
	for {
		f.mu.Lock()
		f.calls["changes"]++
		switch {
		case f.down:
			f.mu.Unlock()
			replyError(w, http.StatusServiceUnavailable, "unavailable")
			return
		case f.noFeed:
			f.mu.Unlock()
			replyError(w, http.StatusNotFound, "not_found")
			return
		}
		head := int64(len(f.changes))
		if _, ok := q["since"]; !ok || f.resyncNext {
			resync := f.resyncNext
			f.resyncNext = false
			f.mu.Unlock()
			reply(w, http.StatusOK, changesResponse{Seq: head, Resync: resync, Changes: []changeRecord{}})
			return
		}
		since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
		if since < head || time.Now().After(deadline) {
			out := changesResponse{Seq: since, Changes: []changeRecord{}}
			if since < head {
				out.Changes = append(out.Changes, f.changes[since:]...)
				out.Seq = head
			}
			f.mu.Unlock()
			reply(w, http.StatusOK, out)
			return
		}
		f.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

type fakeFamily struct {
	userID, jwt string
	device      [2]string // deviceId, deviceName
	audience    []string
	expiresAt   int64
}

type fakeRefresh struct {
	family, session string
	spent           bool
	spentAt         int64
}

func newFakeStore(t *testing.T) *fakeStore {
	f := &fakeStore{sessions: map[string]*storeSession{}, families: map[string]*fakeFamily{}, tokens: map[string]*fakeRefresh{},
		counters: map[string]*counterResponse{}, calls: map[string]int{}, prefix: "/t" + newID()[:12]}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *fakeStore) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

func (f *fakeStore) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeStore) live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

func (f *fakeStore) only() *storeSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		c := *s
		return &c
	}
	return nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

func (f *fakeStore) newSession(userID, host string, aud []string, jwt, family string, idle int64, sliding bool, abs, now int64) *storeSession {
	exp := now + idle
	if exp > abs {
		exp = abs
	}
	s := &storeSession{ID: newID(), UserID: userID, FamilyID: family, Host: host, Audience: aud, StrapiJwt: jwt,
		UpstreamVersion: 1, CreatedAt: now, LastSeenAt: now, HostsLastSeen: map[string]int64{host: now},
		IdleTimeoutMs: idle, Sliding: sliding, ExpiresAt: exp, AbsoluteExpiresAt: abs}
	f.sessions[s.ID] = s
	return s
}

// applyCap is the store's per-user cap (under f.mu): at maxSessions, refuse, or end the least
// recently used sessions (and their families) and say which.
func (f *fakeStore) applyCap(userID string, maxSessions int, limit string, now int64) (evicted []string, refused bool) {
	if maxSessions <= 0 {
		return []string{}, false
	}
	var live []*storeSession
	for _, s := range f.sessions {
		if s.UserID == userID && now < s.ExpiresAt && now < s.AbsoluteExpiresAt {
			live = append(live, s)
		}
	}
	if len(live) < maxSessions {
		return []string{}, false
	}
	if limit == "refuse" {
		return nil, true
	}
	sort.Slice(live, func(i, j int) bool { return live[i].LastSeenAt < live[j].LastSeenAt })
	evicted = []string{}
	for _, s := range live[:len(live)-maxSessions+1] {
		delete(f.sessions, s.ID)
		evicted = append(evicted, s.ID)
		if s.FamilyID != "" {
			evicted = append(evicted, f.revokeFamily(s.FamilyID)...)
		}
	}
	return evicted, false
}

func (f *fakeStore) revokeFamily(id string) []string {
	var ids []string
	for sid, s := range f.sessions {
		if s.FamilyID == id {
			delete(f.sessions, sid)
			ids = append(ids, sid)
		}
	}
	delete(f.families, id)
	return ids
}

// holdReads makes the next session read wait, after the store answered it, until the returned
// release func is called; the held read's session id arrives on the channel.
func (f *fakeStore) holdReads() (<-chan string, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held, f.release = make(chan string, 16), make(chan struct{})
	held, release := f.held, f.release
	return held, func() { close(release) }
}

func reply(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func replyError(w http.ResponseWriter, status int, code string) {
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":{"code":"` + code + `","message":"` + code + `"}}`))
}

func (f *fakeStore) serve(w http.ResponseWriter, r *http.Request) {
	r.URL.Path = strings.TrimPrefix(r.URL.Path, f.prefix)
	if r.URL.Path == "/v1/changes" {
		f.serveChanges(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		replyError(w, http.StatusServiceUnavailable, "unavailable")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testStoreToken {
		replyError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	now := time.Now().UnixMilli()
	if f.clock != nil {
		now = f.clock.nowMs()
	}
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && path == "/v1/sessions":
		f.calls["create"]++
		var in createSessionRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.StrapiJwt == "" {
			replyError(w, http.StatusBadRequest, "bad_request")
			return
		}
		evicted, refused := f.applyCap(in.UserID, in.MaxSessions, in.SessionLimit, now)
		if refused {
			replyError(w, http.StatusConflict, "session_limit")
			return
		}
		family := ""
		if in.Refresh != nil {
			family = newID()
			f.families[family] = &fakeFamily{userID: in.UserID, jwt: in.StrapiJwt, audience: in.Audience, expiresAt: in.Refresh.ExpiresAt,
				device: [2]string{in.DeviceID, in.DeviceName}}
		}
		s := f.newSession(in.UserID, in.Host, in.Audience, in.StrapiJwt, family, in.IdleTimeoutMs, in.Sliding, in.AbsoluteExpiresAt, now)
		s.StrapiRefresh = in.StrapiRefresh
		s.DeviceID, s.DeviceName = in.DeviceID, in.DeviceName
		s.LoginAddr, s.LastAddr, s.RememberMe = in.ClientAddr, in.ClientAddr, in.RememberMe
		if in.Refresh != nil {
			f.tokens[in.Refresh.TokenHash] = &fakeRefresh{family: family, session: s.ID}
		}
		reply(w, http.StatusCreated, createSessionResponse{Session: s, Evicted: evicted})
	case r.Method == http.MethodPost && path == "/v1/refresh":
		f.calls["refresh"]++
		var in rotateRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			replyError(w, http.StatusBadRequest, "bad_request")
			return
		}
		tok := f.tokens[in.TokenHash]
		if tok == nil || f.families[tok.family] == nil || f.families[tok.family].expiresAt <= now {
			replyError(w, http.StatusNotFound, "not_found")
			return
		}
		grace := tok.spent && in.ReuseGraceMs > 0 && now-tok.spentAt <= in.ReuseGraceMs
		if tok.spent && !grace {
			user := ""
			if fam := f.families[tok.family]; fam != nil {
				user = fam.userID
			}
			ids := f.revokeFamily(tok.family)
			f.record("revoked", user, ids)
			reply(w, http.StatusConflict, storeErrorWith("refresh_reused", &revokedSet{UserID: user, FamilyID: tok.family, SessionIDs: ids}))
			return
		}
		if !tok.spent {
			tok.spent, tok.spentAt = true, now
		}
		delete(f.sessions, tok.session)
		f.record("revoked", "", []string{tok.session})
		fam := f.families[tok.family]
		abs := now + in.MaxLifetimeMs
		if abs > fam.expiresAt {
			abs = fam.expiresAt
		}
		s := f.newSession(fam.userID, in.Host, fam.audience, fam.jwt, tok.family, in.IdleTimeoutMs, in.Sliding, abs, now)
		s.DeviceID, s.DeviceName = fam.device[0], fam.device[1]
		f.tokens[in.NewTokenHash] = &fakeRefresh{family: tok.family, session: s.ID}
		reply(w, http.StatusOK, rotateResponse{Session: s, RefreshExpiresAt: fam.expiresAt, ReplacedSessionID: tok.session, Grace: grace})
	case r.Method == http.MethodPost && path == "/v1/touches" && !f.noTouches:
		f.calls["touches"]++
		var in touchesRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Touches) == 0 {
			replyError(w, http.StatusBadRequest, "bad_request")
			return
		}
		out := touchesResponse{Sessions: []storeSession{}, Missing: []string{}}
		for _, one := range in.Touches {
			s := f.sessions[one.ID]
			if s == nil || now >= s.ExpiresAt || now >= s.AbsoluteExpiresAt {
				out.Missing = append(out.Missing, one.ID)
				continue
			}
			f.touched++
			t := applyTouch(s, one.Host, one.IdleTimeoutMs, one.Sliding, now)
			if one.ClientAddr != "" {
				t.LastAddr = one.ClientAddr
			}
			f.sessions[one.ID] = t
			c := *t
			c.StrapiJwt, c.StrapiRefresh = "", ""
			out.Sessions = append(out.Sessions, c)
		}
		reply(w, http.StatusOK, out)
	case strings.HasPrefix(path, "/v1/counters/"):
		f.calls["counter"]++
		key := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/counters/"), "/incr")
		if r.Method == http.MethodDelete {
			delete(f.counters, key)
			reply(w, http.StatusOK, deletedResponse{})
			return
		}
		var in counterRequest
		_ = json.NewDecoder(r.Body).Decode(&in)
		c := f.counters[key]
		if c == nil || c.ResetAt <= now {
			c = &counterResponse{ResetAt: now + in.WindowMs}
			f.counters[key] = c
		}
		c.Count += in.By
		reply(w, http.StatusOK, c)
	case strings.HasPrefix(path, "/v1/users/") && strings.HasSuffix(path, "/sessions"):
		user := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/users/"), "/sessions")
		out := sessionList{Sessions: []storeSession{}}
		var ids []string
		device, byDevice := r.URL.Query()["deviceId"]
		if byDevice {
			f.calls["deleteDevice"]++
			for id, s := range f.sessions {
				if s.UserID == user && s.DeviceID == device[0] {
					delete(f.sessions, id)
					ids = append(ids, id)
					if s.FamilyID != "" {
						ids = append(ids, f.revokeFamily(s.FamilyID)...)
					}
				}
			}
			f.record("revoked", user, ids)
			reply(w, http.StatusOK, deletedResponse{Deleted: len(ids), SessionIDs: ids})
			return
		}
		for id, s := range f.sessions {
			if s.UserID != user || s.ExpiresAt <= now {
				continue
			}
			if r.Method == http.MethodDelete {
				delete(f.sessions, id)
				ids = append(ids, id)
				continue
			}
			c := *s
			c.StrapiJwt, c.StrapiRefresh = "", ""
			out.Sessions = append(out.Sessions, c)
		}
		if r.Method == http.MethodDelete {
			for id, fam := range f.families {
				if fam.userID == user {
					delete(f.families, id)
				}
			}
			f.record("user", user, ids)
			reply(w, http.StatusOK, deletedResponse{Deleted: len(ids), SessionIDs: ids})
			return
		}
		sort.Slice(out.Sessions, func(i, j int) bool { return out.Sessions[i].CreatedAt < out.Sessions[j].CreatedAt })
		reply(w, http.StatusOK, out)
	case strings.HasPrefix(path, "/v1/sessions/"):
		parts := strings.Split(strings.TrimPrefix(path, "/v1/sessions/"), "/")
		s := f.sessions[parts[0]]
		if s == nil || now >= s.ExpiresAt || now >= s.AbsoluteExpiresAt {
			replyError(w, http.StatusNotFound, "not_found")
			return
		}
		switch {
		case r.Method == http.MethodGet && len(parts) == 1:
			f.calls["get"]++
			if f.held != nil {
				c := *s
				held, release := f.held, f.release
				f.held = nil // one read is held
				f.mu.Unlock()
				held <- c.ID
				<-release
				f.mu.Lock()
				reply(w, http.StatusOK, sessionEnvelope{Session: &c})
				return
			}
		case r.Method == http.MethodPut && len(parts) == 2 && parts[1] == "user":
			f.calls["user"]++
			var in userUpdate
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Audience == nil {
				replyError(w, http.StatusBadRequest, "bad_request")
				return
			}
			s.Audience, s.RevalidatedAt = in.Audience, now
			f.record("changed", s.UserID, []string{s.ID})
			if fam := f.families[s.FamilyID]; fam != nil {
				fam.audience = in.Audience
			}
		case r.Method == http.MethodPost && len(parts) == 2 && parts[1] == "touch":
			f.calls["touch"]++
			var in touchRequest
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				replyError(w, http.StatusBadRequest, "bad_request")
				return
			}
			want := s.CreatedAt + in.IdleTimeoutMs
			if in.Sliding {
				want = now + in.IdleTimeoutMs
			}
			if want > s.AbsoluteExpiresAt {
				want = s.AbsoluteExpiresAt
			}
			if want > s.ExpiresAt {
				s.ExpiresAt = want
			}
			hosts := map[string]int64{}
			for k, v := range s.HostsLastSeen {
				hosts[k] = v
			}
			hosts[in.Host] = now
			s.HostsLastSeen = hosts
			s.LastSeenAt = now
		case r.Method == http.MethodPut && len(parts) == 2 && parts[1] == "upstream":
			f.calls["upstream"]++
			var in upstreamUpdate
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.StrapiJwt == "" {
				replyError(w, http.StatusBadRequest, "bad_request")
				return
			}
			if in.ExpectVersion != s.UpstreamVersion {
				replyError(w, http.StatusConflict, "conflict")
				return
			}
			s.StrapiJwt, s.StrapiRefresh = in.StrapiJwt, in.StrapiRefresh
			s.UpstreamVersion++
			f.record("changed", s.UserID, []string{s.ID})
		case r.Method == http.MethodDelete && len(parts) == 1:
			f.calls["delete"]++
			if owner := r.URL.Query().Get("userId"); owner != "" && owner != s.UserID {
				replyError(w, http.StatusNotFound, "not_found")
				return
			}
			ids := []string{s.ID}
			delete(f.sessions, s.ID)
			if r.URL.Query().Get("family") == "1" && s.FamilyID != "" {
				ids = append(ids, f.revokeFamily(s.FamilyID)...)
			}
			f.record("revoked", s.UserID, ids)
			reply(w, http.StatusOK, deletedResponse{Deleted: len(ids), SessionIDs: ids, UserID: s.UserID})
			return
		default:
			replyError(w, http.StatusNotFound, "not_found")
			return
		}
		c := *s
		reply(w, http.StatusOK, sessionEnvelope{Session: &c})
	default:
		replyError(w, http.StatusNotFound, "not_found")
	}
}

func storeErrorWith(code string, revoked *revokedSet) *storeError {
	e := &storeError{Revoked: revoked}
	e.Error.Code, e.Error.Message = code, code
	return e
}
