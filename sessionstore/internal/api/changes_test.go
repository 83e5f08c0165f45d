package api

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
)

func (e *env) changes(query string) ChangesBody {
	e.t.Helper()
	var out ChangesBody
	e.must("GET", "/v1/changes"+query, nil, http.StatusOK, &out)
	if out.Changes == nil {
		e.t.Fatalf("GET /v1/changes%s: changes is null", query)
	}
	return out
}

// timedChanges runs GET /v1/changes in the background and reports the answer and how long it took.
func (e *env) timedChanges(query string) <-chan struct {
	body ChangesBody
	took time.Duration
} {
	done := make(chan struct {
		body ChangesBody
		took time.Duration
	}, 1)
	start := time.Now()
	go func() {
		var out ChangesBody
		status, raw := e.call("GET", "/v1/changes"+query, nil)
		if status != http.StatusOK || json.Unmarshal(raw, &out) != nil {
			e.t.Errorf("GET /v1/changes%s = %d %s", query, status, raw)
		}
		done <- struct {
			body ChangesBody
			took time.Duration
		}{out, time.Since(start)}
	}()
	return done
}

func TestChangesFeed(t *testing.T) {
	e := newEnv(t)
	start := e.changes("")
	if start.Seq != 0 || start.Resync || len(start.Changes) != 0 {
		t.Fatalf("fresh feed = %+v", start)
	}
	a := e.create(createReq("12", "jwt-a", "tok-a", 60_000, true, time.Hour))
	b := e.create(createReq("12", "jwt-b", "", 60_000, true, time.Hour))
	c := e.create(createReq("13", "jwt-c", "", 60_000, true, time.Hour))
	e.must("POST", "/v1/sessions/"+b.ID+"/touch", map[string]any{"host": "a.localhost", "idleTimeoutMs": 60_000, "sliding": true}, http.StatusOK, nil)
	e.must("POST", "/v1/touches", map[string]any{"touches": []any{map[string]any{"id": c.ID, "host": "a.localhost"}}}, http.StatusOK, nil)
	if got := e.changes(""); got.Seq != 0 {
		t.Fatalf("creates and touches recorded changes: %+v", got)
	}

	e.must("PUT", "/v1/sessions/"+a.ID+"/user", map[string]any{"audience": []string{"x"}}, http.StatusOK, nil)
	e.must("PUT", "/v1/sessions/"+b.ID+"/upstream", map[string]any{"strapiJwt": "j2", "expectVersion": 1}, http.StatusOK, nil)
	var rot refreshBody
	e.must("POST", "/v1/refresh", refreshReq("tok-a", "tok-a2"), http.StatusOK, &rot)
	e.wantError("POST", "/v1/refresh", refreshReq("tok-a", "tok-a3"), http.StatusConflict, "refresh_reused")
	e.must("DELETE", "/v1/sessions/"+b.ID, nil, http.StatusOK, nil)
	e.must("DELETE", "/v1/users/13/sessions", nil, http.StatusOK, nil)

	got := e.changes("?since=0")
	type row struct{ kind, user, ids string }
	var rows []row
	for i, ch := range got.Changes {
		if ch.Seq != int64(i+1) || ch.At <= 0 {
			t.Fatalf("change %d: %+v", i, ch)
		}
		rows = append(rows, row{ch.Kind, ch.UserID, strings.Join(ch.SessionIDs, ",")})
	}
	want := []row{
		{"changed", "12", a.ID}, {"changed", "12", b.ID}, {"revoked", "12", a.ID},
		{"revoked", "12", rot.Session.ID}, {"revoked", "12", b.ID}, {"user", "13", c.ID},
	}
	if !slices.Equal(rows, want) || got.Seq != 6 || got.Resync {
		t.Fatalf("feed = %+v\nrows %v\nwant %v", got, rows, want)
	}
	if m := e.metric("sessionstore_changes_recorded_total"); m != "6" {
		t.Fatalf("changes recorded metric = %s", m)
	}
	if page := e.changes("?since=2&limit=2"); page.Seq != 4 || len(page.Changes) != 2 || page.Changes[0].Seq != 3 {
		t.Fatalf("since=2 limit=2: %+v", page)
	}
	if page := e.changes("?since=6"); page.Seq != 6 || len(page.Changes) != 0 || page.Resync {
		t.Fatalf("since=head: %+v", page)
	}
	if page := e.changes(""); page.Seq != 6 || len(page.Changes) != 0 {
		t.Fatalf("no since: %+v", page)
	}
	// A consumer ahead of the store (another database, a restarted sequence) resyncs.
	if page := e.changes("?since=7"); !page.Resync || page.Seq != 6 || len(page.Changes) != 0 {
		t.Fatalf("since > head: %+v", page)
	}
	// One that missed trimmed changes resyncs; one just before the oldest does not.
	if _, _, err := e.backend.TrimChanges(t.Context(), store.TrimPlan{Before: math.MinInt64, Keep: 3, Limit: 100}); err != nil {
		t.Fatal(err)
	}
	if page := e.changes("?since=2"); !page.Resync || page.Seq != 6 {
		t.Fatalf("since < oldest-1: %+v", page)
	}
	if page := e.changes("?since=3"); page.Resync || len(page.Changes) != 3 {
		t.Fatalf("since = oldest-1: %+v", page)
	}
	if _, _, err := e.backend.TrimChanges(t.Context(), store.TrimPlan{Before: math.MaxInt64, Limit: 100}); err != nil {
		t.Fatal(err)
	}
	if page := e.changes("?since=5"); !page.Resync || page.Seq != 6 {
		t.Fatalf("all trimmed, since < head: %+v", page)
	}
	if page := e.changes("?since=6&waitMs=0"); page.Resync || page.Seq != 6 {
		t.Fatalf("all trimmed, since = head: %+v", page)
	}
}

func TestChangesBadInput(t *testing.T) {
	e := newEnv(t)
	for _, q := range []string{"?since=-1", "?since=x", "?since=1&since=2", "?waitMs=30001", "?waitMs=-1",
		"?limit=0", "?limit=1001", "?limit=x", "?since=99999999999999999999"} {
		e.wantError("GET", "/v1/changes"+q, nil, http.StatusBadRequest, "bad_request")
	}
	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	e.must("DELETE", "/v1/sessions/"+a.ID, nil, http.StatusOK, nil)
	if page := e.changes("?since=0&waitMs=30000&limit=1000"); len(page.Changes) != 1 { // the bounds are valid
		t.Fatalf("%+v", page)
	}
	if status, _ := e.callAuth("GET", "/v1/changes", nil, ""); status != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", status)
	}
}

// A long-poll answers as soon as a write of this store records a change (no poll in between).
func TestChangesLongPollLocalWake(t *testing.T) {
	e := newEnvWith(t, Config{FeedPoll: time.Hour}, nil)
	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	for _, write := range []func(){
		func() {
			e.must("PUT", "/v1/sessions/"+a.ID+"/user", map[string]any{"audience": []string{}}, http.StatusOK, nil)
		},
		func() {
			e.must("PUT", "/v1/sessions/"+a.ID+"/upstream", map[string]any{"strapiJwt": "j2", "expectVersion": 1}, http.StatusOK, nil)
		},
		func() { e.must("DELETE", "/v1/sessions/"+a.ID, nil, http.StatusOK, nil) },
		func() { e.must("DELETE", "/v1/users/12/sessions", nil, http.StatusOK, nil) },
	} {
		since := e.changes("").Seq
		wait := e.timedChanges(fmt.Sprintf("?since=%d&waitMs=10000", since))
		waitFor(t, func() bool { return e.metric("sessionstore_change_feed_waiters") == "1" })
		write()
		if r := <-wait; len(r.body.Changes) != 1 || r.body.Seq != since+1 || r.took > 5*time.Second {
			t.Fatalf("woken by a local write: %+v after %s", r.body, r.took)
		}
	}
}

// A long-poll answers as soon as a write of this store records a change, and one written by
// another replica (straight into the shared backend, no wake-up) within a few polls.
func TestChangesLongPoll(t *testing.T) {
	e := newEnv(t)
	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	b := e.create(createReq("12", "jwt-b", "", 60_000, true, time.Hour))

	wait := e.timedChanges("?since=0&waitMs=10000")
	time.Sleep(200 * time.Millisecond)
	if m := e.metric("sessionstore_change_feed_waiters"); m != "1" {
		t.Fatalf("waiters gauge = %s", m)
	}
	e.must("DELETE", "/v1/sessions/"+a.ID, nil, http.StatusOK, nil)
	r := <-wait
	if len(r.body.Changes) != 1 || r.body.Changes[0].SessionIDs[0] != a.ID || r.body.Seq != 1 || r.took > 2*time.Second {
		t.Fatalf("woken by a local write: %+v after %s", r.body, r.took)
	}

	wait = e.timedChanges("?since=1&waitMs=10000")
	time.Sleep(200 * time.Millisecond)
	written := time.Now()
	if _, err := e.backend.DeleteSession(t.Context(), b.ID, store.Deletion{Now: e.serverNow()}); err != nil {
		t.Fatal(err)
	}
	r = <-wait
	if len(r.body.Changes) != 1 || r.body.Changes[0].SessionIDs[0] != b.ID || time.Since(written) > 500*time.Millisecond {
		t.Fatalf("a write of another replica: %+v, %s after it", r.body, time.Since(written))
	}

	// Nothing comes: the answer after waitMs, at since.
	r = <-e.timedChanges("?since=2&waitMs=300")
	if r.body.Seq != 2 || len(r.body.Changes) != 0 || r.took < 300*time.Millisecond || r.took > 3*time.Second {
		t.Fatalf("timed-out wait: %+v after %s", r.body, r.took)
	}
	waitFor(t, func() bool { return e.metric("sessionstore_change_feed_waiters") == "0" })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// The server's read and write timeouts are shorter than waitMs: the wait still ends with its answer.
func TestChangesLongPollOutlivesServerTimeouts(t *testing.T) {
	e := newEnvWith(t, Config{}, func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond })
	a := e.create(createReq("12", "jwt-a", "", 60_000, true, time.Hour))
	answer := make(chan string, 1)
	go func() {
		// A connection of its own: the transport would retry a broken reused one, hiding the cut.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		req, _ := http.NewRequest("GET", e.url+"/v1/changes?since=0&waitMs=5000", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			answer <- err.Error()
			return
		}
		defer func() { _ = resp.Body.Close() }()
		raw, err := io.ReadAll(resp.Body)
		answer <- fmt.Sprint(resp.StatusCode, " ", string(raw), err)
	}()
	time.Sleep(700 * time.Millisecond)
	e.must("DELETE", "/v1/sessions/"+a.ID, nil, http.StatusOK, nil)
	if got := <-answer; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, a.ID) {
		t.Fatalf("after the server timeouts: %s", got)
	}
}

// Waiters are bounded (503 beyond), and Shutdown ends every wait at once.
func TestChangesWaitersBoundedAndShutdown(t *testing.T) {
	e := newEnvWith(t, Config{MaxFeedWaiters: 2}, nil)
	for range 3 { // waits that ended leave their place
		if r := <-e.timedChanges("?since=0&waitMs=50"); r.body.Seq != 0 {
			t.Fatalf("%+v", r.body)
		}
	}
	var waits []<-chan struct {
		body ChangesBody
		took time.Duration
	}
	for range 2 {
		waits = append(waits, e.timedChanges("?since=0&waitMs=20000"))
	}
	waitFor(t, func() bool { return e.metric("sessionstore_change_feed_waiters") == "2" })
	e.wantError("GET", "/v1/changes?since=0&waitMs=1000", nil, http.StatusServiceUnavailable, "too_many_waiters")
	e.changes("?since=0") // waitMs=0 never waits, so it is never refused
	e.server.Shutdown()
	for _, w := range waits {
		if r := <-w; r.took > 3*time.Second || r.body.Seq != 0 {
			t.Fatalf("wait after Shutdown: %+v after %s", r.body, r.took)
		}
	}
	if r := <-e.timedChanges("?since=0&waitMs=20000"); r.took > 3*time.Second {
		t.Fatalf("a wait after Shutdown took %s", r.took)
	}
}

// A client that goes away ends its wait (the waiter count drops at once).
func TestChangesClientGone(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequestWithContext(t.Context(), "GET", e.url+"/v1/changes?since=0&waitMs=20000", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	client := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("the wait answered before its client gave up")
	}
	waitFor(t, func() bool { return e.metric("sessionstore_change_feed_waiters") == "0" })
}

// Concurrent revocations and long-polls: every change is delivered exactly once, in order, to a
// consumer following the feed.
func TestChangesFollowerSeesEverything(t *testing.T) {
	e := newEnv(t)
	const n = 40
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.create(createReq(fmt.Sprint("u", i), "jwt", "", 60_000, true, time.Hour)).ID
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				e.must("DELETE", "/v1/sessions/"+ids[i], nil, http.StatusOK, nil)
			}
		})
	}
	seen := map[string]bool{}
	since := int64(0)
	for deadline := time.Now().Add(10 * time.Second); len(seen) < n && time.Now().Before(deadline); {
		page := e.changes(fmt.Sprintf("?since=%d&waitMs=1000&limit=7", since))
		for _, c := range page.Changes {
			if c.Seq != since+1 || seen[c.SessionIDs[0]] {
				t.Fatalf("change %+v after %d", c, since)
			}
			seen[c.SessionIDs[0]] = true
			since = c.Seq
		}
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("followed %d of %d changes", len(seen), n)
	}
}
