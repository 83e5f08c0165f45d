package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/api"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

// storeAdmin works on the storage directly: the bolt file (the server must not be running: bbolt
// locks it) or the MongoDB database (shared with running servers: nothing is cached in them).
type storeAdmin struct{ s store.Backend }

// openStoreAdmin opens the storage the flags choose: a bolt file read-only when readOnly (and
// giving up on its lock after 1s), a MongoDB database within 5s.
func openStoreAdmin(ctx context.Context, b *backendFlags, readOnly bool) (*storeAdmin, error) {
	s, err := openBackend(ctx, b, openOptions{lockTimeout: time.Second, readOnly: readOnly, startupTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return &storeAdmin{s}, nil
}

func (a *storeAdmin) list(ctx context.Context, user string) ([]*api.Session, error) {
	list, err := a.s.ListUserSessions(ctx, user, time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	out := make([]*api.Session, len(list))
	for i, s := range list {
		out[i] = api.NewSessionView(s)
	}
	return out, nil
}

func (a *storeAdmin) revokeUser(ctx context.Context, user string) (api.RevokedBody, error) {
	rev, err := a.s.DeleteUserSessions(ctx, user, time.Now().UnixMilli())
	return api.NewRevokedBody(rev, false), err
}

func (a *storeAdmin) revokeSession(ctx context.Context, id string) (api.RevokedBody, error) {
	rev, err := a.s.DeleteSession(ctx, id, store.Deletion{WithFamily: true, Now: time.Now().UnixMilli()})
	if errors.Is(err, store.ErrNotFound) {
		return api.RevokedBody{}, errNoSession
	}
	return api.NewRevokedBody(rev, true), err
}

func (a *storeAdmin) close() error { return a.s.Close() }

// httpAdmin talks to a running server.
type httpAdmin struct {
	base   string
	token  string
	client *http.Client
}

func newHTTPAdmin(base, token string) (*httpAdmin, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server must be an http(s) URL, got %q", base)
	}
	if token == "" {
		return nil, errors.New("--server needs --token (or SESSIONSTORE_TOKEN)")
	}
	return &httpAdmin{base: strings.TrimRight(base, "/"), token: token, client: &http.Client{}}, nil
}

func (a *httpAdmin) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil) //nolint:gosec // --server is the operator's
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req) //nolint:gosec // as above
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error.Code == "not_found" && strings.HasPrefix(path, "/v1/sessions/") {
			return errNoSession
		}
		return fmt.Errorf("server answered %s: %s %s", resp.Status, e.Error.Code, e.Error.Message)
	}
	return json.Unmarshal(body, out)
}

func (a *httpAdmin) list(ctx context.Context, user string) ([]*api.Session, error) {
	var out api.SessionsBody
	err := a.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(user)+"/sessions", &out)
	return out.Sessions, err
}

func (a *httpAdmin) revokeUser(ctx context.Context, user string) (api.RevokedBody, error) {
	var out api.RevokedBody
	err := a.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(user)+"/sessions", &out)
	return out, err
}

func (a *httpAdmin) revokeSession(ctx context.Context, id string) (api.RevokedBody, error) {
	var out api.RevokedBody
	err := a.do(ctx, http.MethodDelete, "/v1/sessions/"+url.PathEscape(id)+"?family=1", &out)
	return out, err
}

func (a *httpAdmin) close() error { return nil }
