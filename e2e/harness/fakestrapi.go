package harness

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FakeUser is a user of the fake Strapi.
type FakeUser struct {
	ID       int
	Username string
	Email    string
	Password string
	Audience string
}

// FakeStrapi answers POST /api/auth/local like Strapi's users-permissions (a signed HS256 JWT
// {id, iat, exp} and the user), and on every other path echoes what it received as JSON. It runs
// on a real port of 127.0.0.1.
type FakeStrapi struct {
	URL    string
	Secret []byte // signs its JWTs like Strapi's jwtSecret

	users    map[string]FakeUser // by username and by email
	srv      *http.Server
	ln       net.Listener
	received atomic.Int64 // requests on non-login paths
	logins   atomic.Int64 // login requests

	mu     sync.Mutex
	issued map[string]string // jwt -> username
	seq    int64
}

// Echo is what the fake answers on a non-login path.
type Echo struct {
	Method        string            `json:"method"`
	Path          string            `json:"path"`
	Host          string            `json:"host"`
	Authorization string            `json:"authorization"`
	AuthHeaders   map[string]string `json:"authHeaders"` // X-Auth-* headers
	Headers       map[string]string `json:"headers"`     // every request header (values joined by ",")
	Cookie        string            `json:"cookie"`
	Seq           int64             `json:"seq"`
}

// StartFakeStrapi starts the fake on a free port; it is closed with the env.
func StartFakeStrapi(env *Env, users []FakeUser) (*FakeStrapi, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &FakeStrapi{
		URL:    "http://" + ln.Addr().String(),
		Secret: []byte(RandomString(32)),
		users:  map[string]FakeUser{},
		ln:     ln,
		issued: map[string]string{},
	}
	for _, u := range users {
		f.users[strings.ToLower(u.Username)] = u
		f.users[strings.ToLower(u.Email)] = u
	}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	if env != nil {
		env.OnClose(func() { _ = f.srv.Close() })
	}
	return f, nil
}

// Close stops the fake.
func (f *FakeStrapi) Close() { _ = f.srv.Close() }

// Received is the number of requests that reached a non-login path.
func (f *FakeStrapi) Received() int64 { return f.received.Load() }

// Logins is the number of login requests the fake answered.
func (f *FakeStrapi) Logins() int64 { return f.logins.Load() }

// IssuedTo says which user a JWT was issued to ("" if the fake never issued it).
func (f *FakeStrapi) IssuedTo(jwt string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.issued[jwt]
}

// IssuedJWTs returns every JWT the fake issued.
func (f *FakeStrapi) IssuedJWTs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for j := range f.issued {
		out = append(out, j)
	}
	return out
}

// IssueJWT signs a Strapi-shaped JWT for the user (as a direct login would).
func (f *FakeStrapi) IssueJWT(u FakeUser) string {
	f.mu.Lock()
	f.seq++
	seq := f.seq
	f.mu.Unlock()
	now := time.Now().Unix()
	// jti makes every login's JWT distinct, so a test can tell which login a JWT came from.
	payload := fmt.Sprintf(`{"id":%d,"iat":%d,"exp":%d,"jti":"fake-%d-%s"}`, u.ID, now, now+30*24*3600, seq, RandomString(6))
	jwt := SignHS256(`{"alg":"HS256","typ":"JWT"}`, payload, f.Secret)
	f.mu.Lock()
	f.issued[jwt] = u.Username
	f.mu.Unlock()
	return jwt
}

// SignHS256 builds a JWT from raw header and payload JSON.
func SignHS256(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

const fakeBadLogin = `{"data":null,"error":{"status":400,"name":"ValidationError","message":"Invalid identifier or password","details":{}}}`

func (f *FakeStrapi) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == "/api/auth/local" {
		f.logins.Add(1)
		var in struct {
			Identifier string `json:"identifier"`
			Password   string `json:"password"`
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		_ = json.Unmarshal(raw, &in)
		u, ok := f.users[strings.ToLower(in.Identifier)]
		if !ok || in.Password == "" || in.Password != u.Password {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, fakeBadLogin)
			return
		}
		body, _ := json.Marshal(map[string]any{
			"jwt": f.IssueJWT(u),
			"user": map[string]any{
				"id": u.ID, "documentId": fmt.Sprintf("doc%d", u.ID), "username": u.Username, "email": u.Email,
				"provider": "local", "confirmed": true, "blocked": false, "audience": u.Audience,
			},
		})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/api/users/me" {
		// What the plugin's revalidation reads: the user the bearer JWT was issued to.
		f.mu.Lock()
		name := f.issued[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		f.mu.Unlock()
		u, ok := f.users[strings.ToLower(name)]
		if !ok {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"data":null,"error":{"status":401,"name":"UnauthorizedError","message":"Missing or invalid credentials"}}`)
			return
		}
		body, _ := json.Marshal(map[string]any{"id": u.ID, "username": u.Username, "email": u.Email, "blocked": false, "audience": u.Audience})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
		return
	}
	seq := f.received.Add(1)
	e := Echo{Method: r.Method, Path: r.URL.Path, Host: r.Host, Authorization: r.Header.Get("Authorization"),
		AuthHeaders: map[string]string{}, Headers: map[string]string{}, Cookie: r.Header.Get("Cookie"), Seq: seq}
	for k, v := range r.Header {
		e.Headers[k] = strings.Join(v, ",")
		if strings.HasPrefix(strings.ToLower(k), "x-auth-") {
			e.AuthHeaders[k] = strings.Join(v, ",")
		}
	}
	body, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
}

// StartOKServer starts a tiny upstream answering 200 with a short body on every path (benchmarks).
func StartOKServer(env *Env) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	body := []byte(`{"data":{"ok":true}}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "20")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	closeFn := func() { _ = srv.Close() }
	if env != nil {
		env.OnClose(closeFn)
	}
	return "http://" + ln.Addr().String(), closeFn, nil
}
