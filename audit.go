package accessproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// auditOutput is the process's standard error (under Yaegi a plugin's os.Stderr is Traefik's own),
// so audit events show whatever Traefik's log level.
var auditOutput io.Writer = os.Stderr

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
		Time: time.Now().UTC().Format(time.RFC3339Nano), Level: "info", Plugin: "accessproxy", Middleware: m.name,
		Event: event, Host: requestHost(req.Host), Client: clientIP(req), Method: req.Method, Path: req.URL.Path,
		UserID: userID, SessionID: sessionID, Reason: reason,
	})
	if err != nil {
		return
	}
	_, _ = fmt.Fprintln(auditOutput, string(line))
}
