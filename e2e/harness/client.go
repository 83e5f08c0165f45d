package harness

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Client sends requests to one address with a chosen Host header.
type Client struct {
	Base string // e.g. http://127.0.0.1:8080
	HTTP *http.Client
}

// NewClient makes a client for base.
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
		// Redirects are answers too: never follow them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Response is a read response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends method path to host with an optional bearer token and JSON body.
func (c *Client) Do(method, host, path, token string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// JSON decodes the body as an object (nil if it is not one).
func (r *Response) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// String renders the response for messages.
func (r *Response) String() string {
	return fmt.Sprintf("%d %s", r.Status, strings.TrimSpace(string(r.Body)))
}

// Everything is the status line, headers and body as one string (to search for leaked secrets).
func (r *Response) Everything() string {
	var b strings.Builder
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.Write(r.Body)
	return b.String()
}

// ErrorShape checks a Strapi-shaped error body {"data":null,"error":{"status","name","message"}}
// with the given status and name.
func (r *Response) ErrorShape(status int, name string) error {
	var e struct {
		Data  json.RawMessage `json:"data"`
		Error *struct {
			Status  int    `json:"status"`
			Name    string `json:"name"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		return fmt.Errorf("body is not JSON: %v: %s", err, r.Body)
	}
	if string(e.Data) != "null" {
		return fmt.Errorf("data is %s, want null: %s", e.Data, r.Body)
	}
	if e.Error == nil {
		return fmt.Errorf("no error object: %s", r.Body)
	}
	if e.Error.Status != status || e.Error.Name != name || e.Error.Message == "" {
		return fmt.Errorf("error = %d %s %q, want %d %s with a message", e.Error.Status, e.Error.Name, e.Error.Message, status, name)
	}
	if r.Status != status {
		return fmt.Errorf("HTTP status %d, want %d", r.Status, status)
	}
	return nil
}

// DecodeJWT splits a JWT into its header and claims (no signature check).
func DecodeJWT(token string) (header, claims map[string]any, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, nil, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	dec := func(s string, out *map[string]any) error {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil {
			return err
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		return d.Decode(out)
	}
	if err := dec(parts[0], &header); err != nil {
		return nil, nil, fmt.Errorf("JWT header: %v", err)
	}
	if err := dec(parts[1], &claims); err != nil {
		return nil, nil, fmt.Errorf("JWT payload: %v", err)
	}
	return header, claims, nil
}

// VerifyHS256 says whether token is signed with key (HS256).
func VerifyHS256(token string, key []byte) bool {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(token[:i]))
	return hmac.Equal(sig, mac.Sum(nil))
}

var jwtRe = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// FindJWTs returns every JWT-shaped string in s.
func FindJWTs(s string) []string { return jwtRe.FindAllString(s, -1) }
