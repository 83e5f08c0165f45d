package accessproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// auditOutput is the process's standard output, where Traefik writes its own log by default:
// under Yaegi a plugin's os.Stdout is Traefik's, so audit lines join that stream whatever the log
// level (fmt.Print, by contrast, goes through Traefik's logger at DEBUG level).
var auditOutput io.Writer = os.Stdout

// auditLine is one auth event, written as a JSON line to Traefik's output. It never holds a token.
type auditLine struct {
	Time       string `json:"time"`
	Level      string `json:"level"`
	Plugin     string `json:"plugin"`
	Middleware string `json:"middleware"`
	Event      string `json:"event"`
	Host       string `json:"host"`
	Client     string `json:"client"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	UserID     string `json:"userId,omitempty"`
	SessionID  string `json:"sessionId,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

func (m *Middleware) audit(event string, req *http.Request, userID, sessionID string) {
	m.auditReason(event, req, userID, sessionID, "")
}

func (m *Middleware) auditReason(event string, req *http.Request, userID, sessionID, reason string) {
	line, err := json.Marshal(auditLine{
		Time: m.clock.now().UTC().Format(time.RFC3339Nano), Level: "info", Plugin: "accessproxy", Middleware: m.name,
		Event: event, Host: requestHost(req.Host), Client: clientIP(req), Method: req.Method, Path: req.URL.Path,
		UserID: userID, SessionID: sessionID, Reason: reason,
	})
	if err != nil {
		return
	}
	_, _ = fmt.Fprintln(auditOutput, string(line))
}
