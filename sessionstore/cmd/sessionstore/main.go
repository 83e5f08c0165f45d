// Command sessionstore is the session store of Strapi Access Proxy: a small HTTP service that
// keeps the proxy's sessions, refresh-token families and rate-limit counters.
//
//	sessionstore [serve] [flags]                        run the server
//	sessionstore sessions list   --user ID              list a user's live sessions
//	sessionstore sessions revoke --user ID | --session ID
//	sessionstore audit list [--user ID] [--kind K] [--since 1h]  read the audit trail
//
// Every flag can also be set through SESSIONSTORE_<FLAG> (upper case, dashes as underscores);
// a flag given on the command line wins.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad flags or configuration: nothing was started
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "sessions":
			return runAdmin(args[1:], stdout, stderr)
		case "audit":
			return runAudit(args[1:], stdout, stderr)
		case "serve":
			args = args[1:]
		case "help", "-h", "--help", "-help":
			_, _ = fmt.Fprint(stdout, usage)
			return exitOK
		}
	}
	return runServe(args, stderr)
}

const usage = `usage:
  sessionstore [serve] [--listen ADDR] --token T --encryption-key K [--backend bolt] [--bolt-path FILE]
  sessionstore sessions list   --user ID [--json] [--bolt-path FILE | --backend mongo --mongo-uri URI | --server URL --token T]
  sessionstore sessions revoke (--user ID | --session ID) [--json] [--bolt-path FILE | --backend mongo --mongo-uri URI | --server URL --token T]
  sessionstore audit list [--user ID] [--kind KIND] [--since 1h] [--limit N] [--json] [--bolt-path FILE | --backend mongo --mongo-uri URI | --server URL --token T]
  serve also takes --audit-retention 720h, --console-listen ADDR and --console-token T (the operator console)
Every flag is also read from SESSIONSTORE_<FLAG> (e.g. SESSIONSTORE_BOLT_PATH).
`

// failf prints the one-line reason of a refused start.
func failf(stderr io.Writer, code int, format string, args ...any) int {
	_, _ = fmt.Fprintf(stderr, "sessionstore: "+format+"\n", args...)
	return code
}
