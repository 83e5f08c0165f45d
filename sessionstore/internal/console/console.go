// Package console is the operator console of the session store: a small server-rendered web UI
// (html/template, embedded assets, no JavaScript needed) on its own listener (--console-listen),
// signed in with --console-token. Overview, Users (search, sessions, revoke) and Audit read the
// backend directly; revocations go through the same backend calls as the API, so the change feed
// tells every plugin.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// MinTokenLen is the shortest --console-token accepted.
const MinTokenLen = 32

// Config wires a Console.
type Config struct {
	Backend store.Backend
	Token   string // the console credential (>= MinTokenLen bytes)
	Logger  *slog.Logger
	Now     func() time.Time // nil: time.Now
	// SessionTTL is how long a console sign-in lasts (0: 8h).
	SessionTTL time.Duration
	// Recorded, when set, is told of every change-feed record a console revocation made (the API
	// server's in-process wake-up of change-feed waits).
	Recorded func(store.Change, bool)
}

// Console is the http.Handler of the console.
type Console struct {
	cfg      Config
	auth     *authenticator
	pages    map[string]*template.Template
	mux      *http.ServeMux
	log      *slog.Logger
	now      func() time.Time
	audit    store.AuditLog  // nil when the backend keeps no trail
	dir      store.Directory // nil when the backend cannot search
	failures *limiter
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	c := &Console{cfg: cfg, log: cfg.Logger, now: cfg.Now, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.audit, _ = cfg.Backend.(store.AuditLog)
	c.dir, _ = cfg.Backend.(store.Directory)
	c.auth = newAuthenticator(cfg.Token, cfg.SessionTTL, c.now)
	c.failures = newLimiter(5, time.Minute, 30, c.now)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.signedIn(c.logout))
	c.mux.HandleFunc("GET /{$}", c.signedIn(c.overview))
	c.mux.HandleFunc("GET /users", c.signedIn(c.users))
	c.mux.HandleFunc("POST /users/revoke", c.signedIn(c.revoke))
	c.mux.HandleFunc("POST /users/revoke-all", c.signedIn(c.revokeAll))
	c.mux.HandleFunc("GET /audit", c.signedIn(c.auditPage))
	return c, nil
}

// ServeHTTP sets the security headers of every answer, then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) nowMs() int64 { return c.now().UnixMilli() }
