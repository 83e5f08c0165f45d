package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StrapiUser is a fixture user seeded at Strapi's start (SEED_USERS_FILE, see e2e/strapi/README.md).
type StrapiUser struct {
	Username  string `json:"username"`
	Email     string `json:"email"`
	Password  string `json:"password"`
	Audience  string `json:"audience"`
	Confirmed bool   `json:"confirmed"`
	Blocked   bool   `json:"blocked,omitempty"`
}

// StrapiOptions configure the real Strapi 5 app of e2e/strapi.
type StrapiOptions struct {
	Users           []StrapiUser
	DefaultAudience string   // audience of self-registered users
	JWTSecret       string   // users-permissions jwtSecret; random if empty
	Port            int      // 0 = a free port
	ExtraEnv        []string // more KEY=VALUE
	ScriptLog       io.Writer

	// AdminEmail and AdminPassword: a Strapi admin (super admin) created at bootstrap
	// (E2E_ADMIN_EMAIL / E2E_ADMIN_PASSWORD), for the admin-channel tests; both or neither.
	AdminEmail    string
	AdminPassword string
	// AuthenticatedGrants are more Content API action uids granted to the Authenticated role at
	// bootstrap (E2E_AUTHENTICATED_GRANTS), e.g. "plugin::users-permissions.user.update".
	AuthenticatedGrants []string
}

// Strapi is a running Strapi 5.
type Strapi struct {
	URL       string
	Port      int
	AppDir    string
	JWTSecret string
	Users     []StrapiUser
	// The admin created at bootstrap (StrapiOptions.AdminEmail/AdminPassword), if any.
	AdminEmail    string
	AdminPassword string

	env  *Env
	proc *Proc
	opts StrapiOptions
}

// StartStrapi installs Strapi's node_modules once (scripts/ensure-strapi.sh, cached), lays out a
// fresh app in the env's dir with its own sqlite file, seeds the users and waits for /_health.
func StartStrapi(env *Env, opts StrapiOptions) (*Strapi, error) {
	appDir := filepath.Join(env.Dir, "strapi-app")
	if _, err := runScript(opts.ScriptLog, "ensure-strapi.sh", "--app", appDir); err != nil {
		return nil, err
	}
	if opts.JWTSecret == "" {
		opts.JWTSecret = RandomString(32)
	}
	if (opts.AdminEmail == "") != (opts.AdminPassword == "") {
		return nil, fmt.Errorf("strapi: AdminEmail and AdminPassword go together")
	}
	s := &Strapi{AppDir: appDir, JWTSecret: opts.JWTSecret, Users: opts.Users, env: env, opts: opts,
		AdminEmail: opts.AdminEmail, AdminPassword: opts.AdminPassword}
	seed := filepath.Join(env.Dir, "strapi-users.json")
	users := opts.Users
	if users == nil {
		users = []StrapiUser{}
	}
	raw, _ := json.MarshalIndent(users, "", "  ")
	if err := os.WriteFile(seed, raw, 0o600); err != nil {
		return nil, err
	}
	var err error
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s.Port = opts.Port
		if s.Port == 0 {
			if s.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
		env := append([]string{
			"HOST=127.0.0.1",
			fmt.Sprintf("PORT=%d", s.Port),
			"DATABASE_FILENAME=" + filepath.Join(appDir, ".tmp", "data.db"),
			"SEED_USERS_FILE=" + seed,
			"DEFAULT_AUDIENCE=" + opts.DefaultAudience,
			"JWT_SECRET=" + opts.JWTSecret,
			"NODE_ENV=production",
			"STRAPI_TELEMETRY_DISABLED=true",
			"BROWSER=none",
		}, opts.ExtraEnv...)
		if opts.AdminEmail != "" {
			env = append(env, "E2E_ADMIN_EMAIL="+opts.AdminEmail, "E2E_ADMIN_PASSWORD="+opts.AdminPassword)
		}
		if len(opts.AuthenticatedGrants) > 0 {
			env = append(env, "E2E_AUTHENTICATED_GRANTS="+strings.Join(opts.AuthenticatedGrants, ","))
		}
		p, err := s.env.Start(ProcSpec{
			Name: "strapi",
			Path: "node",
			Args: []string{"node_modules/@strapi/strapi/bin/strapi.js", "start"},
			Dir:  appDir,
			Env:  env,
		})
		if err != nil {
			return nil, err
		}
		s.proc = p
		client := &http.Client{Timeout: 2 * time.Second}
		lastErr = waitFor(5*time.Minute, 250*time.Millisecond, p, func() (bool, error) {
			resp, err := client.Get(s.URL + "/_health")
			if err != nil {
				return false, nil
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK, nil
		})
		if lastErr == nil {
			return s, nil
		}
		p.Stop(5 * time.Second)
		lastErr = fmt.Errorf("strapi: %v\n--- log (%s):\n%s", lastErr, p.LogPath, tailString(p.Log(), 60))
		if !addrInUse(p.Log()) || opts.Port != 0 {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

// Proc is the Strapi process.
func (s *Strapi) Proc() *Proc { return s.proc }

// Stop stops Strapi.
func (s *Strapi) Stop() { s.proc.Stop(10 * time.Second) }
