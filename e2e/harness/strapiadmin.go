package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Strapi's admin API (@strapi/admin 5.54, @strapi/content-manager 5.54), as the admin panel calls
// it: POST /admin/login answers {"data":{"token","accessToken","user"}}; the content-manager API
// reads and writes any content type, users-permissions users included, with that admin JWT.

// UPUserModel is the users-permissions user's uid, as the content-manager API names it.
const UPUserModel = "plugin::users-permissions.user"

// AdminLogin logs in as a Strapi admin through c (Host host; "" for Strapi itself) and returns
// the admin access token and the answer.
func AdminLogin(c *Client, host, email, password string) (string, *Response, error) {
	r, err := c.Do(http.MethodPost, host, "/admin/login", "", map[string]string{"email": email, "password": password})
	if err != nil {
		return "", nil, err
	}
	if r.Status != http.StatusOK {
		return "", r, fmt.Errorf("POST /admin/login: %s", r)
	}
	var b struct {
		Data struct {
			Token string `json:"token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Data.Token == "" {
		return "", r, fmt.Errorf("POST /admin/login: no data.token in %s", r)
	}
	return b.Data.Token, r, nil
}

// AdminAPI calls Strapi's admin API with an admin token.
type AdminAPI struct {
	C     *Client
	Host  string // "" when C talks to Strapi itself
	Token string
}

// FindUPUsers lists users-permissions users whose field equals value (content-manager filters).
func (a *AdminAPI) FindUPUsers(field, value string) ([]map[string]any, error) {
	q := url.Values{}
	q.Set(fmt.Sprintf("filters[$and][0][%s][$eq]", field), value)
	q.Set("pageSize", "100")
	r, err := a.C.Do(http.MethodGet, a.Host, "/content-manager/collection-types/"+UPUserModel+"?"+q.Encode(), a.Token, nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("content-manager list of users where %s = %q: %s", field, value, r)
	}
	var b struct {
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		return nil, fmt.Errorf("content-manager list: %v: %s", err, r)
	}
	return b.Results, nil
}

// UPUser returns the users-permissions user with that username (nil if there is none).
func (a *AdminAPI) UPUser(username string) (map[string]any, error) {
	users, err := a.FindUPUsers("username", username)
	if err != nil || len(users) == 0 {
		return nil, err
	}
	return users[0], nil
}

// UpdateUPUser writes fields of the users-permissions user with that documentId, as the admin
// panel's edit view does.
func (a *AdminAPI) UpdateUPUser(documentID string, fields map[string]any) (*Response, error) {
	r, err := a.C.Do(http.MethodPut, a.Host, "/content-manager/collection-types/"+UPUserModel+"/"+url.PathEscape(documentID), a.Token, fields)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return r, fmt.Errorf("content-manager update of user %s: %s", documentID, r)
	}
	return r, nil
}

// RawExchange writes raw bytes to a TCP address (a request Go's client would never send: broken
// chunked encoding, a body that breaks off), optionally half-closes the connection, and reads
// one HTTP response.
func RawExchange(addr string, raw []byte, closeWrite bool, timeout time.Duration) (*Response, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(raw); err != nil {
		return nil, err
	}
	if closeWrite {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}
