package accessproxy

// Requests the proxy answers itself by asking Strapi first, through the rest of the router's
// chain: the answer is buffered, never streamed to the client as is.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
)

// maxLoginBody caps what the proxy buffers of a login response; past it, it fails closed.
const maxLoginBody = 1 << 20

// bufferedResponse holds a login response until it has been rewritten. It is used on login
// paths only; every other route writes straight through.
type bufferedResponse struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: http.Header{}}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > maxLoginBody {
		b.overflow = true
		return 0, errors.New("login response exceeds the proxy's buffer")
	}
	return b.body.Write(p)
}

// Flush is a no-op: nothing leaves before the rewrite.
func (b *bufferedResponse) Flush() {}

// Hijack is refused: a login answer must go through the rewrite, never over a raw connection.
func (b *bufferedResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("accessproxy: connection hijacking is not allowed on login paths")
}

func (b *bufferedResponse) copyTo(rw http.ResponseWriter, body []byte) {
	h := rw.Header()
	for k, v := range b.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}

// callStrapi sends a request (with a JSON body unless body is nil) to Strapi through the rest of
// the router's chain, on the original request's host, and returns the buffered answer.
func (m *Middleware) callStrapi(orig *http.Request, method, path, bearer string, body interface{}) *bufferedResponse {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	r := orig.Clone(orig.Context())
	r.Method = method
	u := *orig.URL
	u.Path, u.RawPath, u.RawQuery = path, "", ""
	r.URL = &u
	r.RequestURI = u.RequestURI()
	r.Header = http.Header{}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Encoding", "identity")
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	r.Body, r.ContentLength = http.NoBody, 0
	if raw != nil {
		r.Body = io.NopCloser(bytes.NewReader(raw))
		r.ContentLength = int64(len(raw))
	}
	r.GetBody = nil
	buf := newBufferedResponse()
	m.next.ServeHTTP(buf, r)
	if buf.status == 0 {
		buf.status = http.StatusOK
	}
	return buf
}
