package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// Cookies.
const (
	cookieSession = "console_session" // the signed-in console session (random id, server-side)
	cookieLogin   = "console_login"   // the sign-in form's CSRF token (double submit)
	maxSessions   = 64                // console sessions kept at once; the oldest go first
)

type consoleSession struct {
	csrf    string
	expires time.Time
}

// authenticator checks the console token and keeps the console sessions in memory (a restart
// signs everyone out).
type authenticator struct {
	tokenHash [sha256.Size]byte
	ttl       time.Duration
	now       func() time.Time
	mu        sync.Mutex
	sessions  map[string]*consoleSession
}

func newAuthenticator(token string, ttl time.Duration, now func() time.Time) *authenticator {
	return &authenticator{tokenHash: sha256.Sum256([]byte(token)), ttl: ttl, now: now, sessions: map[string]*consoleSession{}}
}

// tokenOK compares SHA-256 digests in constant time (neither content nor length leaks).
func (a *authenticator) tokenOK(got string) bool {
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], a.tokenHash[:]) == 1
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// start opens a console session and returns its id.
func (a *authenticator) start() (string, *consoleSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for id, s := range a.sessions {
		if !now.Before(s.expires) {
			delete(a.sessions, id)
		}
	}
	for len(a.sessions) >= maxSessions { // drop the one expiring first
		var oldest string
		for id, s := range a.sessions {
			if oldest == "" || s.expires.Before(a.sessions[oldest].expires) {
				oldest = id
			}
		}
		delete(a.sessions, oldest)
	}
	id := randomToken()
	s := &consoleSession{csrf: randomToken(), expires: now.Add(a.ttl)}
	a.sessions[id] = s
	return id, s
}

// lookup returns the live console session of r's cookie.
func (a *authenticator) lookup(r *http.Request) (string, *consoleSession) {
	ck, err := r.Cookie(cookieSession)
	if err != nil {
		return "", nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[ck.Value]
	if s == nil {
		return "", nil
	}
	if !a.now().Before(s.expires) {
		delete(a.sessions, ck.Value)
		return "", nil
	}
	return ck.Value, s
}

func (a *authenticator) end(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, id)
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// setCookie sets an HttpOnly SameSite=Strict cookie, Secure when the console is served over TLS
// (on a plain-http loopback listener a Secure cookie would not come back).
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	//nolint:gosec // Secure exactly when served over TLS, see above
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// limiter counts failed sign-ins per client address and in total, in fixed windows.
type limiter struct {
	perAddr, total int
	window         time.Duration
	now            func() time.Time
	mu             sync.Mutex
	start          time.Time
	counts         map[string]int
	all            int
}

func newLimiter(perAddr int, window time.Duration, total int, now func() time.Time) *limiter {
	return &limiter{perAddr: perAddr, total: total, window: window, now: now, counts: map[string]int{}}
}

func (l *limiter) roll() {
	if now := l.now(); now.Sub(l.start) >= l.window {
		l.start, l.counts, l.all = now, map[string]int{}, 0
	}
}

// blocked reports whether addr may not try now.
func (l *limiter) blocked(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	return l.counts[addr] >= l.perAddr || l.all >= l.total
}

func (l *limiter) fail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll()
	if len(l.counts) < 10_000 {
		l.counts[addr]++
	}
	l.all++
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// signedIn lets a signed-in request through (with a POST, only with its CSRF token) and sends
// every other to the sign-in page.
func (c *Console) signedIn(h func(w http.ResponseWriter, r *http.Request, s *consoleSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, s := c.auth.lookup(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
			if !sameToken(r.PostFormValue("csrf"), s.csrf) {
				http.Error(w, "invalid or missing CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, s := c.auth.lookup(r); s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.showLogin(w, r, http.StatusOK, "")
}

func (c *Console) showLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := randomToken()
	setCookie(w, r, cookieLogin, csrf, 600)
	c.render(w, status, "login", page{Title: "Sign in", CSRF: csrf, Error: msg})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	addr := remoteAddr(r)
	if c.failures.blocked(addr) {
		c.log.Warn("console: sign-in refused: too many failures", "addr", addr)
		w.Header().Set("Retry-After", "60")
		c.showLogin(w, r, http.StatusTooManyRequests, "Too many failed sign-ins. Try again in a minute.")
		return
	}
	ck, err := r.Cookie(cookieLogin)
	if err != nil || !sameToken(r.PostFormValue("csrf"), ck.Value) {
		c.showLogin(w, r, http.StatusForbidden, "The form expired. Sign in again.")
		return
	}
	if !c.auth.tokenOK(r.PostFormValue("token")) {
		c.failures.fail(addr)
		c.log.Warn("console: failed sign-in", "addr", addr)
		c.showLogin(w, r, http.StatusUnauthorized, "Wrong console token.")
		return
	}
	id, _ := c.auth.start()
	setCookie(w, r, cookieLogin, "", -1)
	setCookie(w, r, cookieSession, id, int(c.auth.ttl.Seconds()))
	c.log.Info("console: signed in", "addr", addr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *consoleSession) {
	if id, _ := c.auth.lookup(r); id != "" {
		c.auth.end(id)
	}
	setCookie(w, r, cookieSession, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
