package harness

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Tap is a small reverse proxy put between two processes (Traefik and Strapi, or the plugin and
// the sessionstore): it forwards every request untouched, records what arrived (method, path,
// headers), and on demand holds the answer of chosen requests for a while after the target has
// answered them: a store read that is "in flight" for as long as a test needs.
type Tap struct {
	URL string

	target *url.URL
	srv    *http.Server
	proxy  *httputil.ReverseProxy

	mu    sync.Mutex
	seen  []TapRequest
	holds []*tapHold
}

// TapRequest is one request the tap forwarded, as it arrived.
type TapRequest struct {
	Method string
	Path   string // the raw path, as sent
	Query  string
	Host   string
	Header http.Header
	At     time.Time
}

type tapHold struct {
	method, prefix string
	delay          time.Duration
	answered       chan string // gets the path once the target answered (the answer is then held)
}

// StartTap starts a tap on a free port of 127.0.0.1 in front of target; it is closed with env.
func StartTap(env *Env, target string) (*Tap, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Tap{URL: "http://" + ln.Addr().String(), target: u}
	t.proxy = httputil.NewSingleHostReverseProxy(u)
	t.proxy.Transport = &tapTransport{t: t, next: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32}}
	t.proxy.FlushInterval = -1
	t.proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "tap: "+err.Error())
	}
	t.srv = &http.Server{Handler: http.HandlerFunc(t.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.srv.Serve(ln) }()
	if env != nil {
		env.OnClose(func() { _ = t.srv.Close() })
	}
	return t, nil
}

func (t *Tap) serve(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.seen = append(t.seen, TapRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Host: r.Host, Header: r.Header.Clone(), At: time.Now()})
	t.mu.Unlock()
	t.proxy.ServeHTTP(w, r)
}

// Close stops the tap.
func (t *Tap) Close() { _ = t.srv.Close() }

// Mark is the number of requests seen so far: Since(mark) returns the later ones.
func (t *Tap) Mark() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

// Since returns the requests seen after mark.
func (t *Tap) Since(mark int) []TapRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	if mark > len(t.seen) {
		return nil
	}
	return append([]TapRequest(nil), t.seen[mark:]...)
}

// WithHeader returns the requests seen that carry header k with value v (the harness's way of
// telling one test's requests from the others').
func (t *Tap) WithHeader(k, v string) []TapRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []TapRequest
	for _, r := range t.seen {
		if r.Header.Get(k) == v {
			out = append(out, r)
		}
	}
	return out
}

// HoldNext arms a hold: the next request with this method whose path starts with prefix is
// forwarded at once, and its answer is given back delay after the target answered. The returned
// channel gets that request's path the moment the target has answered (the answer is then held).
func (t *Tap) HoldNext(method, prefix string, delay time.Duration) <-chan string {
	h := &tapHold{method: method, prefix: prefix, delay: delay, answered: make(chan string, 1)}
	t.mu.Lock()
	t.holds = append(t.holds, h)
	t.mu.Unlock()
	return h.answered
}

func (t *Tap) takeHold(r *http.Request) *tapHold {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, h := range t.holds {
		if h.method == r.Method && strings.HasPrefix(r.URL.Path, h.prefix) {
			t.holds = append(t.holds[:i], t.holds[i+1:]...)
			return h
		}
	}
	return nil
}

// tapTransport applies the holds: the target's whole answer is read, then kept back.
type tapTransport struct {
	t    *Tap
	next http.RoundTripper
}

func (tt *tapTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := tt.t.takeHold(r)
	resp, err := tt.next.RoundTrip(r)
	if h == nil || err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	h.answered <- r.URL.Path
	time.Sleep(h.delay)
	return resp, nil
}

// HeaderSpellings returns the values of every header of h that an upstream could read as name:
// any case, '_' for '-' (CGI, WSGI and PHP read X_Auth_User_Id as X-Auth-User-Id), keyed by the
// spelling that arrived.
func HeaderSpellings(h http.Header, name string) map[string][]string {
	want := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	out := map[string][]string{}
	for k, v := range h {
		if strings.ReplaceAll(strings.ToLower(k), "_", "-") == want {
			out[k] = v
		}
	}
	return out
}
