package accessproxy

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	calls    map[string]int
	down     bool
	srv      *httptest.Server
}

func newFakeStore(t *testing.T) *fakeStore {
	f := &fakeStore{sessions: map[string]*storeSession{}, calls: map[string]int{}}
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

func (f *fakeStore) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+testStoreToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	now := time.Now().UnixMilli()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/sessions"), "/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/sessions":
		f.calls["create"]++
		var in createSessionRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.StrapiJwt == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		exp := now + in.IdleTimeoutMs
		if exp > in.AbsoluteExpiresAt {
			exp = in.AbsoluteExpiresAt
		}
		s := &storeSession{ID: newID(), UserID: in.UserID, Host: in.Host, Audience: in.Audience, StrapiJwt: in.StrapiJwt,
			StrapiRefresh: in.StrapiRefresh, UpstreamVersion: 1, CreatedAt: now, LastSeenAt: now,
			HostsLastSeen: map[string]int64{in.Host: now}, IdleTimeoutMs: in.IdleTimeoutMs, Sliding: in.Sliding,
			ExpiresAt: exp, AbsoluteExpiresAt: in.AbsoluteExpiresAt}
		f.sessions[s.ID] = s
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(sessionEnvelope{Session: s})
	case len(parts) >= 2 && parts[0] == "":
		s := f.sessions[parts[1]]
		if s == nil || now >= s.ExpiresAt || now >= s.AbsoluteExpiresAt {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such session"}}`))
			return
		}
		switch {
		case r.Method == http.MethodGet && len(parts) == 2:
			f.calls["get"]++
		case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "touch":
			f.calls["touch"]++
			var in touchRequest
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				w.WriteHeader(http.StatusBadRequest)
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
		case r.Method == http.MethodDelete && len(parts) == 2:
			f.calls["delete"]++
			delete(f.sessions, s.ID)
			_, _ = w.Write([]byte(`{"deleted":1}`))
			return
		default:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(sessionEnvelope{Session: s})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}
