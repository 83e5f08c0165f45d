package accessproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The session store client. The wire contract is docs/store-api.md.

var (
	errStoreNotFound    = errors.New("not found in the session store")
	errStoreConflict    = errors.New("conflicting update in the session store")
	errRefreshReused    = errors.New("refresh token reused")
	errSessionLimit     = errors.New("the account has its maximum number of sessions")
	errStoreUnavailable = errors.New("session store unavailable")
)

// maxStoreResponse bounds what the plugin reads from the store.
const maxStoreResponse = 1 << 20

type storeSession struct {
	ID                string           `json:"id"`
	UserID            string           `json:"userId"`
	Username          string           `json:"username"` // the login's, for operators; the plugin does not use it
	FamilyID          string           `json:"familyId"`
	Host              string           `json:"host"`
	Audience          []string         `json:"audience"`
	DeviceID          string           `json:"deviceId"`
	DeviceName        string           `json:"deviceName"`
	StrapiJwt         string           `json:"strapiJwt"`
	StrapiRefresh     string           `json:"strapiRefresh"`
	UpstreamVersion   int64            `json:"upstreamVersion"`
	CreatedAt         int64            `json:"createdAt"`
	LastSeenAt        int64            `json:"lastSeenAt"`
	HostsLastSeen     map[string]int64 `json:"hostsLastSeen"`
	IdleTimeoutMs     int64            `json:"idleTimeoutMs"`
	Sliding           bool             `json:"sliding"`
	ExpiresAt         int64            `json:"expiresAt"`
	AbsoluteExpiresAt int64            `json:"absoluteExpiresAt"`
	// RevalidatedAt is when the user was last re-read from Strapi (0: not since login).
	RevalidatedAt int64 `json:"revalidatedAt,omitempty"`
	// LoginAddr and LastAddr are the client's address at login and at the last touch ("": unknown).
	LoginAddr string `json:"loginAddr"`
	LastAddr  string `json:"lastAddr"`
	// RememberMe: the login asked to be remembered (the instance's rememberMe windows apply).
	RememberMe bool `json:"rememberMe"`
}

type sessionEnvelope struct {
	Session *storeSession `json:"session"`
}

type refreshSeed struct {
	TokenHash string `json:"tokenHash"`
	ExpiresAt int64  `json:"expiresAt"`
}

type createSessionRequest struct {
	UserID            string       `json:"userId"`
	Host              string       `json:"host"`
	Audience          []string     `json:"audience"`
	DeviceID          string       `json:"deviceId,omitempty"`
	DeviceName        string       `json:"deviceName,omitempty"`
	StrapiJwt         string       `json:"strapiJwt"`
	StrapiRefresh     string       `json:"strapiRefresh,omitempty"`
	IdleTimeoutMs     int64        `json:"idleTimeoutMs"`
	Sliding           bool         `json:"sliding"`
	AbsoluteExpiresAt int64        `json:"absoluteExpiresAt"`
	Refresh           *refreshSeed `json:"refresh,omitempty"`
	ClientAddr        string       `json:"clientAddr,omitempty"`
	RememberMe        bool         `json:"rememberMe,omitempty"`
	MaxSessions       int          `json:"maxSessions,omitempty"`
	SessionLimit      string       `json:"sessionLimit,omitempty"`
	Username          string       `json:"username,omitempty"` // Strapi's user.username, for operators
}

type createSessionResponse struct {
	Session *storeSession `json:"session"`
	Evicted []string      `json:"evicted"`
}

type touchRequest struct {
	Host          string `json:"host"`
	IdleTimeoutMs int64  `json:"idleTimeoutMs"`
	Sliding       bool   `json:"sliding"`
	ClientAddr    string `json:"clientAddr,omitempty"`
}

type storeError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	// Revoked names what a refresh-token reuse ended (409 refresh_reused).
	Revoked *revokedSet `json:"revoked"`
}

// revokedSet is what the store ended in one revocation.
type revokedSet struct {
	UserID     string   `json:"userId"`
	FamilyID   string   `json:"familyId"`
	SessionIDs []string `json:"sessionIds"`
}

type storeClient struct {
	base    string
	authz   string
	http    *http.Client
	timeout time.Duration
}

// newStoreHTTPClient is shared by every instance using one store; each call's deadline comes
// from the calling instance's storeTimeout.
func newStoreHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // the store is reached directly, never through an environment proxy
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

func newStoreClient(httpClient *http.Client, base, token string, timeout time.Duration) *storeClient {
	return &storeClient{base: strings.TrimRight(base, "/"), authz: "Bearer " + token, http: httpClient, timeout: timeout}
}

// do sends one call and decodes a 2xx answer into out. Every failure that is not the store's
// own 404/409 is errStoreUnavailable: callers fail closed on it.
func (c *storeClient) do(ctx context.Context, method, path string, in, out interface{}) error {
	return c.doErr(ctx, method, path, in, out, nil)
}

// doErr is do that also decodes an error answer's body into errOut (when not nil).
func (c *storeClient) doErr(ctx context.Context, method, path string, in, out interface{}, errOut *storeError) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body) //nolint:gosec // the store's URL is the operator's storeURL, paths are built here
	if err != nil {
		return fmt.Errorf("%w: %v", errStoreUnavailable, err)
	}
	addAuditHeaders(ctx, req.Header)
	req.Header.Set("Authorization", c.authz)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req) //nolint:gosec // as above: no client input picks the host
	if err != nil {
		return fmt.Errorf("%w: %v", errStoreUnavailable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxStoreResponse))
	if err != nil {
		return fmt.Errorf("%w: %v", errStoreUnavailable, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%w: bad answer: %v", errStoreUnavailable, err)
		}
		return nil
	}
	var se storeError
	_ = json.Unmarshal(raw, &se)
	if errOut != nil {
		*errOut = se
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errStoreNotFound
	case resp.StatusCode == http.StatusConflict && se.Error.Code == "refresh_reused":
		return errRefreshReused
	case resp.StatusCode == http.StatusConflict && se.Error.Code == "session_limit":
		return errSessionLimit
	case resp.StatusCode == http.StatusConflict:
		return errStoreConflict
	}
	return fmt.Errorf("%w: %s %s answered %d %s", errStoreUnavailable, method, path, resp.StatusCode, se.Error.Code)
}

func (c *storeClient) sessionCall(ctx context.Context, method, path string, in interface{}) (*storeSession, error) {
	var env sessionEnvelope
	if err := c.do(ctx, method, path, in, &env); err != nil {
		return nil, err
	}
	if env.Session == nil || env.Session.ID == "" {
		return nil, fmt.Errorf("%w: answer without a session", errStoreUnavailable)
	}
	return env.Session, nil
}

// createSession creates a session and says which sessions of the user the cap ended for it
// (maxSessions with evictOldest); errSessionLimit: the cap refused it.
func (c *storeClient) createSession(ctx context.Context, in *createSessionRequest) (*storeSession, []string, error) {
	var out createSessionResponse
	if err := c.do(ctx, http.MethodPost, "/v1/sessions", in, &out); err != nil {
		return nil, nil, err
	}
	if out.Session == nil || out.Session.ID == "" {
		return nil, nil, fmt.Errorf("%w: answer without a session", errStoreUnavailable)
	}
	return out.Session, out.Evicted, nil
}

func (c *storeClient) getSession(ctx context.Context, id string) (*storeSession, error) {
	return c.sessionCall(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(id), nil)
}

func (c *storeClient) touchSession(ctx context.Context, id string, in *touchRequest) (*storeSession, error) {
	return c.sessionCall(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(id)+"/touch", in)
}

// deleteSession revokes one session (with withFamily, its refresh family and every session of
// it, even when the session itself already ended) and says which sessions ended. With owner set,
// the store revokes only a session (or, for one already gone, a family) of that user: else 404.
func (c *storeClient) deleteSession(ctx context.Context, id string, withFamily bool, owner string) (*deletedResponse, error) {
	q := url.Values{}
	if withFamily {
		q.Set("family", "1")
	}
	if owner != "" {
		q.Set("userId", owner)
	}
	path := "/v1/sessions/" + url.PathEscape(id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out deletedResponse
	err := c.do(ctx, http.MethodDelete, path, nil, &out)
	return &out, err
}

type deletedResponse struct {
	Deleted    int      `json:"deleted"`
	SessionIDs []string `json:"sessionIds"`
	UserID     string   `json:"userId"`
}

func (c *storeClient) deleteUserSessions(ctx context.Context, userID string) (*deletedResponse, error) {
	var out deletedResponse
	err := c.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(userID)+"/sessions", nil, &out)
	return &out, err
}

// deleteDeviceSessions revokes the user's sessions logged in with deviceId, each with its refresh
// family.
func (c *storeClient) deleteDeviceSessions(ctx context.Context, userID, deviceID string) (*deletedResponse, error) {
	var out deletedResponse
	path := "/v1/users/" + url.PathEscape(userID) + "/sessions?" + url.Values{"deviceId": {deviceID}}.Encode()
	err := c.do(ctx, http.MethodDelete, path, nil, &out)
	return &out, err
}

type sessionList struct {
	Sessions []storeSession `json:"sessions"`
}

func (c *storeClient) listUserSessions(ctx context.Context, userID string) ([]storeSession, error) {
	var out sessionList
	err := c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(userID)+"/sessions", nil, &out)
	return out.Sessions, err
}

type rotateRequest struct {
	TokenHash     string `json:"tokenHash"`
	NewTokenHash  string `json:"newTokenHash"`
	Host          string `json:"host"`
	IdleTimeoutMs int64  `json:"idleTimeoutMs"`
	Sliding       bool   `json:"sliding"`
	MaxLifetimeMs int64  `json:"maxLifetimeMs"`
	// ReuseGraceMs: a token spent at most this long ago still rotates (0: never).
	ReuseGraceMs int64 `json:"reuseGraceMs"`
	// The windows of a remembered family's new session (0: the normal ones).
	RememberIdleTimeoutMs int64 `json:"rememberIdleTimeoutMs,omitempty"`
	RememberMaxLifetimeMs int64 `json:"rememberMaxLifetimeMs,omitempty"`
	// ClientAddr: the new session's login address ("": the family's).
	ClientAddr string `json:"clientAddr,omitempty"`
}

type rotateResponse struct {
	Session           *storeSession `json:"session"`
	RefreshExpiresAt  int64         `json:"refreshExpiresAt"`
	ReplacedSessionID string        `json:"replacedSessionId"`
	// Grace: the token had been spent moments before; this is a second successor within the grace.
	Grace bool `json:"grace"`
}

// rotateRefresh spends a refresh token for a new one and a new session (errRefreshReused: the
// token was already spent and the store revoked its family).
// On reuse, the revokedSet names the sessions the store ended (nil from a store that does not say).
func (c *storeClient) rotateRefresh(ctx context.Context, in *rotateRequest) (*rotateResponse, *revokedSet, error) {
	var out rotateResponse
	var se storeError
	if err := c.doErr(ctx, http.MethodPost, "/v1/refresh", in, &out, &se); err != nil {
		return nil, se.Revoked, err
	}
	if out.Session == nil || out.Session.ID == "" {
		return nil, nil, fmt.Errorf("%w: answer without a session", errStoreUnavailable)
	}
	return &out, nil, nil
}

type counterRequest struct {
	WindowMs int64 `json:"windowMs"`
	By       int64 `json:"by"`
}

type counterResponse struct {
	Count   int64 `json:"count"`
	ResetAt int64 `json:"resetAt"`
}

// incrCounter adds by (0 reads) to a fixed-window counter shared by every replica.
func (c *storeClient) incrCounter(ctx context.Context, key string, window time.Duration, by int64) (*counterResponse, error) {
	var out counterResponse
	if err := c.do(ctx, http.MethodPost, "/v1/counters/"+url.PathEscape(key)+"/incr", &counterRequest{WindowMs: window.Milliseconds(), By: by}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *storeClient) deleteCounter(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodDelete, "/v1/counters/"+url.PathEscape(key), nil, nil)
}

type upstreamUpdate struct {
	StrapiJwt         string `json:"strapiJwt"`
	StrapiRefresh     string `json:"strapiRefresh"`
	ExpectVersion     int64  `json:"expectVersion"`
	AbsoluteExpiresAt int64  `json:"absoluteExpiresAt"`
}

// updateUpstream replaces the Strapi credentials of a session if nobody else did since
// expectVersion (errStoreConflict otherwise).
func (c *storeClient) updateUpstream(ctx context.Context, id string, in *upstreamUpdate) (*storeSession, error) {
	return c.sessionCall(ctx, http.MethodPut, "/v1/sessions/"+url.PathEscape(id)+"/upstream", in)
}

type userUpdate struct {
	Audience []string `json:"audience"`
}

// updateUser records what Strapi said of the session's user now: its audience (the session's and
// its family's), and that it was re-checked (revalidatedAt).
func (c *storeClient) updateUser(ctx context.Context, id string, audience []string) (*storeSession, error) {
	if audience == nil {
		audience = []string{}
	}
	return c.sessionCall(ctx, http.MethodPut, "/v1/sessions/"+url.PathEscape(id)+"/user", &userUpdate{Audience: audience})
}
