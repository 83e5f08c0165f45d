package accessproxy

import "net/http"

// serveUpgraded passes an authenticated upgrade request (a websocket) on. TEMPORARY: the watcher
// that ends the connection with its session is being written.
func (m *Middleware) serveUpgraded(rw http.ResponseWriter, req *http.Request, token string, e *tokenEntry) {
	_ = token
	m.prepareUpstream(req, e)
	m.next.ServeHTTP(rw, req)
}
