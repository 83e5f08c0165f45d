package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/api"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
)

// runAudit is `sessionstore audit list [--user ID] [--kind K] [--since 1h] [--limit N] [--json]`,
// from the storage or a running server (--server).
//
//nolint:funlen // the flag table and dispatch, read top to bottom
func runAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "list" {
		return failf(stderr, exitUsage, "usage: sessionstore audit list [--user ID] [--kind KIND] [--since 1h] [--limit N]")
	}
	fs := flag.NewFlagSet("sessionstore audit list", flag.ContinueOnError)
	user := fs.String("user", "", "only this user's events")
	kind := fs.String("kind", "", "only events of this kind ("+strings.Join(store.AuditKinds, ", ")+")")
	since := fs.Duration("since", 0, "only events of the last DURATION (e.g. 1h; 0: all kept)")
	limit := fs.Int("limit", 100, "at most this many events, newest first (1-500)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var storage backendFlags
	storage.register(fs)
	server := fs.String("server", "", "base URL of a running sessionstore (instead of opening the storage)")
	token := fs.String("token", "", "bearer token of the running server (with --server)")
	timeout := fs.Duration("timeout", 10*time.Second, "overall time limit")
	fs.String("encryption-key", "", "not needed")
	err := parseFlags(fs, args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return failf(stderr, exitUsage, "%v", err)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *user != "" {
		q.Set("user", *user)
	}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	switch {
	case fs.NArg() > 0:
		return failf(stderr, exitUsage, "unexpected argument %s", fs.Arg(0))
	case *since < 0:
		return failf(stderr, exitUsage, "--since must be >= 0")
	case *since > 0:
		q.Set("since", strconv.FormatInt(time.Now().Add(-*since).UnixMilli(), 10))
	}
	// The API's own rules check the filters, whichever way the trail is read.
	query, msg := api.ParseAuditQuery(&http.Request{URL: &url.URL{RawQuery: q.Encode()}})
	if msg != "" {
		return failf(stderr, exitUsage, "%s", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var body api.AuditBody
	if *server != "" {
		a, err := newHTTPAdmin(*server, *token)
		if err != nil {
			return failf(stderr, exitUsage, "%v", err)
		}
		err = a.do(ctx, http.MethodGet, "/v1/audit?"+q.Encode(), &body)
		if err != nil {
			return failf(stderr, exitError, "%v", err)
		}
	} else {
		a, err := openStoreAdmin(ctx, &storage, true)
		var usage *usageError
		switch {
		case errors.As(err, &usage):
			return failf(stderr, exitUsage, "%v", err)
		case errors.Is(err, bolt.ErrLocked):
			return failf(stderr, exitError, "%s is locked by a running sessionstore; use --server http://HOST:PORT --token …", storage.boltPath)
		case err != nil:
			return failf(stderr, exitError, "%v", err)
		}
		defer func() { _ = a.close() }()
		log, ok := a.s.(store.AuditLog)
		if !ok {
			return failf(stderr, exitError, "this backend keeps no audit trail")
		}
		page, err := log.ListAudit(ctx, query)
		if err != nil {
			return failf(stderr, exitError, "%v", err)
		}
		body = api.AuditBody{Events: make([]api.AuditEvent, 0, len(page.Events)), Next: page.Next}
		for _, e := range page.Events {
			body.Events = append(body.Events, api.NewAuditView(e))
		}
	}
	if *asJSON {
		return printJSON(stdout, body)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "TIME\tKIND\tUSER\tUSERNAME\tHOST\tADDR\tUSER AGENT\tREASON\tSESSIONS")
	for _, e := range body.Events {
		ids := e.SessionIDs
		if e.SessionID != "" {
			ids = append([]string{"+" + e.SessionID}, ids...)
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ts(e.At), e.Kind, orDash(e.UserID), orDash(e.Username),
			orDash(e.Host), orDash(e.ClientAddr), orDash(e.UserAgent), orDash(e.Reason), orDash(strings.Join(ids, ",")))
	}
	_ = tw.Flush()
	_, _ = fmt.Fprintf(stdout, "%d event(s)\n", len(body.Events))
	return exitOK
}
