package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

type createRequest struct {
	UserID            string         `json:"userId"`
	Host              string         `json:"host"`
	Audience          []string       `json:"audience"`
	DeviceID          deviceText     `json:"deviceId"`   // optional, "" = none
	DeviceName        deviceText     `json:"deviceName"` // optional, "" = none
	StrapiJWT         string         `json:"strapiJwt"`
	StrapiRefresh     string         `json:"strapiRefresh"`
	IdleTimeoutMs     int64          `json:"idleTimeoutMs"`
	Sliding           bool           `json:"sliding"`
	AbsoluteExpiresAt int64          `json:"absoluteExpiresAt"`
	Refresh           *createRefresh `json:"refresh"`
	ClientAddr        string         `json:"clientAddr"` // optional, "" = unknown
	RememberMe        bool           `json:"rememberMe"` // optional; stored for the plugins, nothing else
	Username          deviceText     `json:"username"`   // optional: the name Strapi's user object showed; "" = unknown
	// MaxSessions caps the user's live sessions (0 = no cap); SessionLimit is what a login at the
	// cap does: "evictOldest" ("" too) or "refuse". See store.PlanEviction.
	MaxSessions  int    `json:"maxSessions"`
	SessionLimit string `json:"sessionLimit"`
}

type createRefresh struct {
	TokenHash string `json:"tokenHash"`
	ExpiresAt int64  `json:"expiresAt"`
}

func (q *createRequest) validate(now int64) *apiError {
	switch {
	case !validUserID(q.UserID):
		return badRequest("userId: 1-128 chars of A-Z a-z 0-9 . _ : @ -")
	case !validHost(q.Host):
		return badRequest("host: 1-253 chars, lower-case host without port")
	case !validAudience(q.Audience):
		return badRequest("audience: at most 64 entries of 1-253 printable chars")
	case !validDeviceText(string(q.DeviceID)):
		return badRequest("deviceId: at most 255 bytes of UTF-8 text without control characters")
	case !validDeviceText(string(q.DeviceName)):
		return badRequest("deviceName: at most 255 bytes of UTF-8 text without control characters")
	case !validDeviceText(string(q.Username)):
		return badRequest("username: at most 255 bytes of UTF-8 text without control characters")
	case !okAddr(q.ClientAddr):
		return badRequest(badClientAddr)
	case q.MaxSessions < 0 || q.MaxSessions > store.MaxSessionsCap:
		return badRequest("maxSessions: 0 (no cap) to 10000")
	case q.SessionLimit != "" && q.SessionLimit != limitEvictOldest && q.SessionLimit != limitRefuse:
		return badRequest(`sessionLimit: "evictOldest" (the default) or "refuse"`)
	case q.StrapiJWT == "":
		return badRequest("strapiJwt is required")
	case !validDuration(q.IdleTimeoutMs):
		return badRequest("idleTimeoutMs must be > 0")
	case q.AbsoluteExpiresAt <= now || q.AbsoluteExpiresAt-now > maxDurationMs:
		return badRequest("absoluteExpiresAt must be in the future")
	case q.Refresh != nil && !validTokenHash(q.Refresh.TokenHash):
		return badRequest("refresh.tokenHash: 64 lower-case hex chars")
	case q.Refresh != nil && (q.Refresh.ExpiresAt <= now || q.Refresh.ExpiresAt-now > maxDurationMs):
		return badRequest("refresh.expiresAt must be in the future")
	}
	return nil
}

// What a login at the cap does (createRequest.SessionLimit).
const (
	limitEvictOldest = "evictOldest"
	limitRefuse      = "refuse"
)

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) (int, any) {
	var q createRequest
	if err := decode(w, r, &q); err != nil {
		return 0, err
	}
	now := s.nowMs()
	if err := q.validate(now); err != nil {
		return 0, err
	}
	addr, _ := clientAddr(q.ClientAddr)
	sess := &store.Session{
		ID: newID(), UserID: q.UserID, Host: q.Host, Audience: q.Audience,
		DeviceID: string(q.DeviceID), DeviceName: string(q.DeviceName),
		LoginAddr: addr, LastAddr: addr, RememberMe: q.RememberMe, Username: string(q.Username),
		UpstreamVersion: 1, CreatedAt: now, LastSeenAt: now, HostsLastSeen: map[string]int64{q.Host: now},
		IdleTimeoutMs: q.IdleTimeoutMs, Sliding: q.Sliding,
		ExpiresAt: store.FirstExpiry(now, q.IdleTimeoutMs, q.AbsoluteExpiresAt), AbsoluteExpiresAt: q.AbsoluteExpiresAt,
	}
	sess.JWT, sess.Refresh = s.sealer.Seal(q.StrapiJWT, sess.ID), s.sealer.Seal(q.StrapiRefresh, sess.ID)
	var fam *store.Family
	var tok *store.RefreshToken
	if q.Refresh != nil {
		fam = &store.Family{ID: newID(), UserID: q.UserID, Host: q.Host, Audience: q.Audience,
			DeviceID: sess.DeviceID, DeviceName: sess.DeviceName, LoginAddr: addr, RememberMe: q.RememberMe, Username: sess.Username,
			CreatedAt: now, ExpiresAt: q.Refresh.ExpiresAt}
		fam.JWT, fam.Refresh = s.sealer.Seal(q.StrapiJWT, fam.ID), s.sealer.Seal(q.StrapiRefresh, fam.ID)
		tok = &store.RefreshToken{Hash: q.Refresh.TokenHash, FamilyID: fam.ID, UserID: q.UserID, SessionID: sess.ID, ExpiresAt: q.Refresh.ExpiresAt}
		sess.FamilyID = fam.ID
	}
	lim := store.Limit{Max: q.MaxSessions, Refuse: q.SessionLimit == limitRefuse}
	evicted, err := s.backend.CreateSession(r.Context(), sess, fam, tok, lim)
	// An eviction is recorded also when the insert after it failed (mongo has no transactions).
	s.recorded(store.RevokedChange(evicted, now))
	s.metrics.SessionsEvicted.Add(float64(evicted.Live))
	s.metrics.SessionsRevoked.Add(float64(evicted.Live))
	if errors.Is(err, store.ErrSessionLimit) {
		s.metrics.SessionLimitRefused.Inc()
	}
	if err != nil {
		return 0, s.storeError(r, err)
	}
	s.metrics.SessionsCreated.Inc()
	return http.StatusCreated, CreatedBody{withSecrets(sess, q.StrapiJWT, q.StrapiRefresh), evicted.Sorted().SessionIDs}
}

// reveal decrypts the session's secrets for a response.
func (s *Server) reveal(r *http.Request, sess *store.Session) (*Session, *apiError) {
	jwt, err := s.sealer.Open(sess.JWT, sess.ID)
	if err == nil {
		var refresh string
		if refresh, err = s.sealer.Open(sess.Refresh, sess.ID); err == nil {
			return withSecrets(sess, jwt, refresh), nil
		}
	}
	s.log.Error("cannot decrypt session secrets", "route", r.Pattern, "session", shortID(sess.ID), "err", err)
	return nil, errInternal
}

func (s *Server) sessionResponse(r *http.Request, sess *store.Session, err error) (int, any) {
	if err != nil {
		return 0, s.storeError(r, err)
	}
	v, aerr := s.reveal(r, sess)
	if aerr != nil {
		return 0, aerr
	}
	return http.StatusOK, SessionBody{v}
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) (int, any) {
	id := r.PathValue("id")
	if !validID(id) {
		return 0, errNotFound
	}
	sess, err := s.backend.GetSession(r.Context(), id, s.nowMs())
	return s.sessionResponse(r, sess, err)
}

type touchRequest struct {
	Host          string `json:"host"`
	IdleTimeoutMs int64  `json:"idleTimeoutMs"`
	Sliding       bool   `json:"sliding"`
	ClientAddr    string `json:"clientAddr"` // optional: the session's lastAddr becomes it
}

func (s *Server) touchSession(w http.ResponseWriter, r *http.Request) (int, any) {
	id := r.PathValue("id")
	if !validID(id) {
		return 0, errNotFound
	}
	var q touchRequest
	if err := decode(w, r, &q); err != nil {
		return 0, err
	}
	if msg := q.validate(); msg != "" {
		return 0, badRequest(msg)
	}
	sess, err := s.backend.TouchSession(r.Context(), id, q.touch(s.nowMs()))
	return s.sessionResponse(r, sess, err)
}

// validate returns what is wrong with the touch ("" when nothing).
func (q *touchRequest) validate() string {
	switch {
	case !validHost(q.Host):
		return "host: 1-253 chars, lower-case host without port"
	case q.Sliding && !validDuration(q.IdleTimeoutMs), q.IdleTimeoutMs < 0 || q.IdleTimeoutMs > maxDurationMs:
		return "idleTimeoutMs must be > 0 when sliding"
	case !okAddr(q.ClientAddr):
		return badClientAddr
	}
	return ""
}

// touch is the validated request as the store applies it.
func (q *touchRequest) touch(now int64) store.Touch {
	addr, _ := clientAddr(q.ClientAddr)
	return store.Touch{Host: q.Host, IdleTimeoutMs: q.IdleTimeoutMs, Sliding: q.Sliding, ClientAddr: addr, Now: now}
}

// Limits of POST /v1/touches.
const (
	maxTouches     = 1000
	maxTouchesBody = 512 << 10 // 1000 touches of the longest id and host fit
)

type touchesRequest struct {
	Touches []touchItem `json:"touches"`
}

// touchItem is one touch of a batch: the session id and the single touch's request.
type touchItem struct {
	ID string `json:"id"`
	touchRequest
}

// TouchesBody answers POST /v1/touches: each touched session once (its state after the batch, no
// secrets) in request order, and the ids that are unknown or expired.
type TouchesBody struct {
	Sessions []*Session `json:"sessions"`
	Missing  []string   `json:"missing"`
}

// touchSessions applies a batch of touches, each as POST /v1/sessions/{id}/touch does, in one
// backend call (one transaction on bolt).
func (s *Server) touchSessions(w http.ResponseWriter, r *http.Request) (int, any) {
	var q touchesRequest
	if err := decodeMax(w, r, &q, maxTouchesBody); err != nil {
		return 0, err
	}
	if len(q.Touches) < 1 || len(q.Touches) > maxTouches {
		return 0, badRequest("touches: 1-1000 entries")
	}
	now := s.nowMs()
	batch := make([]store.TouchOne, 0, len(q.Touches))
	for i := range q.Touches {
		t := &q.Touches[i]
		if msg := t.validate(); msg != "" {
			return 0, badRequest("touches[" + strconv.Itoa(i) + "]." + msg)
		}
		if !validID(t.ID) { // cannot exist: missing, as the single touch's 404
			continue
		}
		batch = append(batch, store.TouchOne{ID: t.ID, Touch: t.touch(now)})
	}
	var got []*store.Session
	if len(batch) > 0 {
		var err error
		if got, err = s.backend.TouchMany(r.Context(), batch); err != nil {
			return 0, s.storeError(r, err)
		}
	}
	last := make(map[string]*store.Session, len(batch)) // an id touched twice: its final state
	for i, one := range batch {
		last[one.ID] = got[i]
	}
	out := TouchesBody{Sessions: []*Session{}, Missing: []string{}}
	seen := make(map[string]bool, len(q.Touches))
	for _, t := range q.Touches {
		if seen[t.ID] {
			continue
		}
		seen[t.ID] = true
		if sess := last[t.ID]; sess != nil {
			out.Sessions = append(out.Sessions, NewSessionView(sess))
		} else {
			out.Missing = append(out.Missing, t.ID)
		}
	}
	return http.StatusOK, out
}

type upstreamRequest struct {
	StrapiJWT         string `json:"strapiJwt"`
	StrapiRefresh     string `json:"strapiRefresh"`
	ExpectVersion     int64  `json:"expectVersion"`
	AbsoluteExpiresAt int64  `json:"absoluteExpiresAt"`
}

func (s *Server) setUpstream(w http.ResponseWriter, r *http.Request) (int, any) {
	id := r.PathValue("id")
	if !validID(id) {
		return 0, errNotFound
	}
	var q upstreamRequest
	if err := decode(w, r, &q); err != nil {
		return 0, err
	}
	now := s.nowMs()
	switch {
	case q.StrapiJWT == "":
		return 0, badRequest("strapiJwt is required")
	case q.ExpectVersion < 1:
		return 0, badRequest("expectVersion must be >= 1")
	case q.AbsoluteExpiresAt != 0 && (q.AbsoluteExpiresAt <= now || q.AbsoluteExpiresAt-now > maxDurationMs):
		return 0, badRequest("absoluteExpiresAt must be 0 (keep) or in the future")
	}
	sess, err := s.backend.SetUpstream(r.Context(), id, store.Upstream{
		ExpectVersion: q.ExpectVersion,
		JWT:           s.sealer.Seal(q.StrapiJWT, id),
		Refresh:       s.sealer.Seal(q.StrapiRefresh, id),
		SealFamily: func(familyID string) ([]byte, []byte, error) {
			return s.sealer.Seal(q.StrapiJWT, familyID), s.sealer.Seal(q.StrapiRefresh, familyID), nil
		},
		AbsoluteExpiresAt: q.AbsoluteExpiresAt,
		Now:               now,
	})
	if err == nil {
		s.recorded(store.SessionChange(sess, now), true)
	}
	return s.sessionResponse(r, sess, err)
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) (int, any) {
	id := r.PathValue("id")
	if !validID(id) {
		return 0, errNotFound
	}
	query := r.URL.Query()
	d := store.Deletion{Now: s.nowMs()}
	switch query.Get("family") {
	case "", "0", "false":
	case "1", "true":
		d.WithFamily = true
	default:
		return 0, badRequest("family: 1 or 0")
	}
	// userId: revoke only a session of that user (the plugin revoking on a user's behalf). Given,
	// it must be one well-formed id: an empty or repeated one guards nothing.
	if owners, ok := query["userId"]; ok {
		if len(owners) != 1 || !validUserID(owners[0]) {
			return 0, badRequest("userId: once, 1-128 chars of A-Z a-z 0-9 . _ : @ -")
		}
		d.Owner = owners[0]
	}
	rev, err := s.backend.DeleteSession(r.Context(), id, d)
	if err != nil {
		return 0, s.storeError(r, err)
	}
	s.recorded(store.RevokedChange(rev, d.Now))
	s.metrics.SessionsRevoked.Add(float64(rev.Live))
	return http.StatusOK, NewRevokedBody(rev, true)
}

func (s *Server) listUserSessions(w http.ResponseWriter, r *http.Request) (int, any) {
	user := r.PathValue("userId")
	if !validUserID(user) {
		return 0, badRequest("userId: 1-128 chars of A-Z a-z 0-9 . _ : @ -")
	}
	list, err := s.backend.ListUserSessions(r.Context(), user, s.nowMs())
	if err != nil {
		return 0, s.storeError(r, err)
	}
	out := make([]*Session, len(list))
	for i, sess := range list {
		out[i] = NewSessionView(sess)
	}
	return http.StatusOK, SessionsBody{out}
}

// deleteUserSessions revokes every session and family of the user or, with ?deviceId=, only those
// of that device (a logout of one device: Strapi 5's POST /api/auth/logout with a deviceId). On
// the mongo backend a login of that device racing the call may survive it; for a logout that is
// acceptable (it is a later login).
func (s *Server) deleteUserSessions(w http.ResponseWriter, r *http.Request) (int, any) {
	user := r.PathValue("userId")
	if !validUserID(user) {
		return 0, badRequest("userId: 1-128 chars of A-Z a-z 0-9 . _ : @ -")
	}
	var rev store.Revocation
	var err error
	if devices, ok := r.URL.Query()["deviceId"]; ok {
		// Given, it must be one device: an empty or repeated one would not say which.
		if len(devices) != 1 || devices[0] == "" || !validDeviceText(devices[0]) {
			return 0, badRequest("deviceId: once, 1-255 bytes of UTF-8 text without control characters")
		}
		if rev, err = s.backend.DeleteDeviceSessions(r.Context(), user, devices[0], s.nowMs()); err == nil {
			s.recorded(store.RevokedChange(rev, 0))
		}
	} else if rev, err = s.backend.DeleteUserSessions(r.Context(), user, s.nowMs()); err == nil {
		s.recorded(store.UserChange(user, rev, 0), true)
	}
	if err != nil {
		return 0, s.storeError(r, err)
	}
	s.metrics.SessionsRevoked.Add(float64(rev.Live))
	return http.StatusOK, NewRevokedBody(rev, false)
}
