package console

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

var (
	reUserID    = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
	reSessionID = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

const (
	searchLimit     = 50
	overviewPages   = 40 // audit pages of store.MaxAuditPage read for the chart at most
	auditPageSize   = 100
	maxQueryRunes   = 128
	day             = 24 * time.Hour
	revokeReason    = "console"
	flashRevoked    = "revoked"
	flashRevokedAll = "revoked_all"
)

type hostCount struct {
	Host  string
	Count int
}

type overviewData struct {
	Total    int
	Hosts    []hostCount
	Chart    chart
	NoAudit  bool
	NoCounts bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *consoleSession) {
	now := c.nowMs()
	d := overviewData{NoAudit: c.audit == nil, NoCounts: c.dir == nil}
	if c.dir != nil {
		total, per, err := c.dir.LiveSessions(r.Context(), now)
		if err != nil {
			c.fail(w, err)
			return
		}
		d.Total = total
		for h, n := range per {
			d.Hosts = append(d.Hosts, hostCount{h, n})
		}
		slices.SortFunc(d.Hosts, func(a, b hostCount) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Host, b.Host)) })
	}
	var events []store.AuditEvent
	if c.audit != nil {
		q := store.AuditQuery{Since: now - day.Milliseconds(), Limit: store.MaxAuditPage}
		for range overviewPages {
			p, err := c.audit.ListAudit(r.Context(), q)
			if err != nil {
				c.fail(w, err)
				return
			}
			events = append(events, p.Events...)
			if p.Next == 0 {
				break
			}
			q.Cursor = p.Next
		}
	}
	d.Chart = buildChart(events, now)
	c.render(w, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", CSRF: s.csrf, Data: d})
}

type usersData struct {
	Query    string
	Searched bool
	Matches  []store.UserMatch
	NoSearch bool
	UserID   string
	Username string
	Sessions []sessionRow
}

type sessionRow struct {
	*store.Session
	Hosts []string
}

func (c *Console) users(w http.ResponseWriter, r *http.Request, s *consoleSession) {
	now := c.nowMs()
	d := usersData{NoSearch: c.dir == nil}
	p := page{Title: "Users", Nav: "users", CSRF: s.csrf}
	switch r.URL.Query().Get("done") {
	case flashRevoked:
		p.Flash = "Session revoked."
	case flashRevokedAll:
		p.Flash = "All sessions of the user revoked."
	}
	d.Query = r.URL.Query().Get("q")
	if len([]rune(d.Query)) > maxQueryRunes {
		d.Query = string([]rune(d.Query)[:maxQueryRunes])
	}
	if _, given := r.URL.Query()["q"]; given && c.dir != nil {
		matches, err := c.dir.SearchUsers(r.Context(), d.Query, now, searchLimit)
		if err != nil {
			c.fail(w, err)
			return
		}
		d.Searched, d.Matches = true, matches
	}
	if user := r.URL.Query().Get("user"); user != "" {
		if !reUserID.MatchString(user) {
			p.Error = "Not a user id."
		} else {
			list, err := c.cfg.Backend.ListUserSessions(r.Context(), user, now)
			if err != nil {
				c.fail(w, err)
				return
			}
			d.UserID = user
			for i := len(list) - 1; i >= 0; i-- { // newest first
				sess := list[i]
				hosts := make([]string, 0, len(sess.HostsLastSeen))
				for h := range sess.HostsLastSeen {
					hosts = append(hosts, h)
				}
				slices.Sort(hosts)
				d.Sessions = append(d.Sessions, sessionRow{sess, hosts})
				if d.Username == "" {
					d.Username = sess.Username
				}
			}
		}
	}
	p.Data = d
	c.render(w, http.StatusOK, "users", p)
}

// note is what a console revocation records in the audit trail.
func (c *Console) note(r *http.Request) context.Context {
	return store.WithAudit(r.Context(), store.AuditNote{ClientAddr: remoteAddr(r), UserAgent: "operator console", Reason: revokeReason})
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request, _ *consoleSession) {
	user, id := r.PostFormValue("user"), r.PostFormValue("session")
	if !reUserID.MatchString(user) || !reSessionID.MatchString(id) {
		http.Error(w, "bad user or session id", http.StatusBadRequest)
		return
	}
	now := c.nowMs()
	rev, err := c.cfg.Backend.DeleteSession(c.note(r), id, store.Deletion{WithFamily: true, Owner: user, Now: now})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.fail(w, err)
		return
	}
	if err == nil {
		c.recorded(store.RevokedChange(rev, now))
		c.log.Info("console: session revoked", "user", user, "sessions", len(rev.SessionIDs))
	}
	http.Redirect(w, r, "/users?user="+url.QueryEscape(user)+"&done="+flashRevoked, http.StatusSeeOther)
}

func (c *Console) revokeAll(w http.ResponseWriter, r *http.Request, _ *consoleSession) {
	user := r.PostFormValue("user")
	if !reUserID.MatchString(user) {
		http.Error(w, "bad user id", http.StatusBadRequest)
		return
	}
	now := c.nowMs()
	rev, err := c.cfg.Backend.DeleteUserSessions(c.note(r), user, now)
	if err != nil {
		c.fail(w, err)
		return
	}
	c.recorded(store.UserChange(user, rev, now), true)
	c.log.Info("console: every session of a user revoked", "user", user, "sessions", len(rev.SessionIDs))
	http.Redirect(w, r, "/users?user="+url.QueryEscape(user)+"&done="+flashRevokedAll, http.StatusSeeOther)
}

func (c *Console) recorded(ch store.Change, ok bool) {
	if c.cfg.Recorded != nil {
		c.cfg.Recorded(ch, ok)
	}
}

type auditData struct {
	User, Kind, Since string
	Kinds             []string
	Events            []store.AuditEvent
	Next              string
	NoAudit           bool
}

var sinceChoices = map[string]time.Duration{"1h": time.Hour, "24h": day, "7d": 7 * day, "30d": 30 * day}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *consoleSession) {
	p := page{Title: "Audit", Nav: "audit", CSRF: s.csrf}
	vals := r.URL.Query()
	d := auditData{User: vals.Get("user"), Kind: vals.Get("kind"), Since: vals.Get("since"), Kinds: store.AuditKinds, NoAudit: c.audit == nil}
	q := store.AuditQuery{Limit: auditPageSize}
	switch {
	case d.User != "" && !reUserID.MatchString(d.User):
		p.Error, d.User = "Not a user id.", ""
	case d.Kind != "" && !slices.Contains(store.AuditKinds, d.Kind):
		p.Error, d.Kind = "Unknown kind.", ""
	}
	q.UserID, q.Kind = d.User, d.Kind
	if dur, ok := sinceChoices[d.Since]; ok {
		q.Since = c.nowMs() - dur.Milliseconds()
	} else {
		d.Since = ""
	}
	if cur, err := strconv.ParseInt(vals.Get("cursor"), 10, 64); err == nil && cur > 0 {
		q.Cursor = cur
	}
	if c.audit != nil && p.Error == "" {
		page, err := c.audit.ListAudit(r.Context(), q)
		if err != nil {
			c.fail(w, err)
			return
		}
		d.Events = page.Events
		if page.Next != 0 {
			next := url.Values{"cursor": {strconv.FormatInt(page.Next, 10)}}
			for k, v := range map[string]string{"user": d.User, "kind": d.Kind, "since": d.Since} {
				if v != "" {
					next.Set(k, v)
				}
			}
			d.Next = "/audit?" + next.Encode()
		}
	}
	p.Data = d
	c.render(w, http.StatusOK, "audit", p)
}

func (c *Console) fail(w http.ResponseWriter, err error) {
	c.log.Error("console: backend call failed", "err", err)
	status := http.StatusInternalServerError
	if errors.Is(err, store.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	http.Error(w, "the store could not answer; try again", status)
}
