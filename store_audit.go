package accessproxy

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"
)

// The audit notes the store records its events with (docs/store-api.md, "Audit notes"): the
// request's host, client address, user-agent summary and a reason travel as X-Audit-* headers on
// the store call the plugin makes anyway, carried there by the call's context.

// storeAuditKey is the context key of the headers (a pointer: unique, and a native type under Yaegi).
var storeAuditKey = new(int)

const maxAuditText = 255

// auditText makes v fit a header and the store's rules: no control characters, valid UTF-8, at
// most 255 bytes.
func auditText(v string) string {
	v = strings.ToValidUTF8(v, "")
	var b strings.Builder
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > maxAuditText {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

func setAudit(h http.Header, name, v string) {
	if v = auditText(v); v != "" {
		h.Set(name, v)
	}
}

// storeAudit returns req's context carrying the audit note of req with reason ("" for none).
func storeAudit(req *http.Request, reason string) context.Context {
	h := http.Header{}
	setAudit(h, "X-Audit-Host", requestHost(req.Host))
	setAudit(h, "X-Audit-Client-Addr", clientAddr(req))
	setAudit(h, "X-Audit-User-Agent", deviceName(req))
	setAudit(h, "X-Audit-Reason", reason)
	return context.WithValue(req.Context(), storeAuditKey, h)
}

// withAuditKind adds an event kind ("login_failed", "lockout") and the account name as typed to
// ctx's note, for a counter increment.
func withAuditKind(ctx context.Context, kind, username string) context.Context {
	h := http.Header{}
	if prev, ok := ctx.Value(storeAuditKey).(http.Header); ok {
		h = prev.Clone()
	}
	setAudit(h, "X-Audit-Kind", kind)
	setAudit(h, "X-Audit-Username", username)
	return context.WithValue(ctx, storeAuditKey, h)
}

// addAuditHeaders copies ctx's note onto a store request.
func addAuditHeaders(ctx context.Context, h http.Header) {
	note, ok := ctx.Value(storeAuditKey).(http.Header)
	if !ok {
		return
	}
	for k, v := range note {
		h[k] = v
	}
}

// loginUsername is the username of Strapi's user object ("" when it has none).
func loginUsername(user map[string]interface{}) string {
	s, _ := user["username"].(string)
	return auditText(s)
}
