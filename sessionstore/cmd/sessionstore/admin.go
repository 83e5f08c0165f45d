package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/api"
	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/store/bolt"
)

// admin is what the sessions commands need, from the bolt file or from a running server.
type admin interface {
	list(ctx context.Context, user string) ([]*api.Session, error)
	revokeUser(ctx context.Context, user string) (api.RevokedBody, error)
	// revokeSession removes the session and its refresh family, so it cannot come back by refresh:
	// also when the session itself already ended (expired, or replaced by a refresh) while its
	// family lives on.
	revokeSession(ctx context.Context, id string) (api.RevokedBody, error)
	close() error
}

var errNoSession = errors.New("no live session or refresh family with that id")

//nolint:funlen // the CLI's flag table and dispatch, read top to bottom
func runAdmin(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return failf(stderr, exitUsage, "usage: sessionstore sessions list --user ID | sessions revoke --user ID|--session ID")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("sessionstore sessions "+cmd, flag.ContinueOnError)
	user := fs.String("user", "", "user id")
	session := fs.String("session", "", "session id (revoke)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var storage backendFlags // opened when no --server
	storage.register(fs)
	server := fs.String("server", "", "base URL of a running sessionstore, e.g. http://127.0.0.1:8181 (instead of opening the storage)")
	token := fs.String("token", "", "bearer token of the running server (with --server)")
	timeout := fs.Duration("timeout", 10*time.Second, "overall time limit")
	// Accepted so that one environment serves both the server and the CLI; unused here.
	fs.String("encryption-key", "", "not needed: the CLI never shows secrets")
	err := parseFlags(fs, args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return failf(stderr, exitUsage, "%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return failf(stderr, exitUsage, "unexpected argument %s", fs.Arg(0))
	case cmd == "list" && *user == "":
		return failf(stderr, exitUsage, "sessions list needs --user ID")
	case cmd == "list" && *session != "":
		return failf(stderr, exitUsage, "sessions list takes --user only")
	case cmd == "revoke" && (*user == "") == (*session == ""):
		return failf(stderr, exitUsage, "sessions revoke needs exactly one of --user ID or --session ID")
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var a admin
	if *server != "" {
		a, err = newHTTPAdmin(*server, *token)
	} else {
		a, err = openStoreAdmin(ctx, &storage, cmd == "list")
	}
	var usage *usageError
	switch {
	case errors.As(err, &usage):
		return failf(stderr, exitUsage, "%v", err)
	case errors.Is(err, bolt.ErrLocked):
		return failf(stderr, exitError, "%s is locked by a running sessionstore; use --server http://HOST:PORT --token … (or SESSIONSTORE_SERVER / SESSIONSTORE_TOKEN)", storage.boltPath)
	case err != nil:
		return failf(stderr, exitError, "%v", err)
	}
	defer func() { _ = a.close() }()

	if cmd == "list" {
		list, err := a.list(ctx, *user)
		if err != nil {
			return failf(stderr, exitError, "%v", err)
		}
		if *asJSON {
			return printJSON(stdout, api.SessionsBody{Sessions: list})
		}
		printTable(stdout, list)
		return exitOK
	}
	var rev api.RevokedBody
	if *user != "" {
		rev, err = a.revokeUser(ctx, *user)
	} else {
		rev, err = a.revokeSession(ctx, *session)
	}
	if err != nil {
		return failf(stderr, exitError, "%v", err)
	}
	if *asJSON {
		if rev.SessionIDs == nil { // from a server that does not name them
			rev.SessionIDs = []string{}
		}
		return printJSON(stdout, rev)
	}
	_, _ = fmt.Fprintf(stdout, "revoked %d session(s)\n", rev.Deleted)
	return exitOK
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitError
	}
	return exitOK
}

func printTable(w io.Writer, list []*api.Session) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "SESSION\tUSER\tDEVICE\tDEVICE NAME\tLOGIN ADDR\tLAST ADDR\tREMEMBER\tHOST\tCREATED\tLAST SEEN\tEXPIRES\tABSOLUTE EXPIRY\tREFRESH\tHOSTS\tUSERNAME")
	for _, s := range list {
		refresh, remember := yesNo(s.FamilyID != ""), yesNo(s.RememberMe)
		hosts := make([]string, 0, len(s.HostsLastSeen))
		for h := range s.HostsLastSeen {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.UserID, orDash(s.DeviceID), orDash(s.DeviceName),
			orDash(s.LoginAddr), orDash(s.LastAddr), remember, s.Host,
			ts(s.CreatedAt), ts(s.LastSeenAt), ts(s.ExpiresAt), ts(s.AbsoluteExpiresAt), refresh, strings.Join(hosts, ","), orDash(s.Username))
	}
	_ = tw.Flush()
	_, _ = fmt.Fprintf(w, "%d session(s)\n", len(list))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// orDash shows "" (no device, no address) as "-", so that the columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ts(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z") }
