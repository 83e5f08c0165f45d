package harness

// Strapi API tokens and the official Strapi client (@strapi/client), for the tests of the
// plugin's apiTokenAllowFrom.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// CreateAPIToken creates a Content API token through Strapi's admin API (POST /admin/api-tokens,
// what the admin panel's Settings → API Tokens does; @strapi/admin 5.54 answers 201
// {"data":{..., "accessKey"}}, the only time the key is shown) and returns its access key. typ is
// "read-only", "full-access" (or "custom"); the token never expires.
func (a *AdminAPI) CreateAPIToken(name, typ string) (string, error) {
	r, err := a.C.Do(http.MethodPost, a.Host, "/admin/api-tokens", a.Token,
		map[string]any{"name": name, "description": "e2e " + typ, "type": typ, "lifespan": nil})
	if err != nil {
		return "", err
	}
	if r.Status != http.StatusCreated && r.Status != http.StatusOK {
		return "", fmt.Errorf("POST /admin/api-tokens: %s", r)
	}
	var b struct {
		Data struct {
			AccessKey string `json:"accessKey"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Data.AccessKey == "" {
		return "", fmt.Errorf("POST /admin/api-tokens: no data.accessKey in %s", r)
	}
	return b.Data.AccessKey, nil
}

var (
	strapiClientOnce sync.Once
	strapiClientNM   string
	strapiClientErr  error
)

// StrapiClientModules installs @strapi/client once (scripts/ensure-strapi-client.sh, cached
// outside the repo) and returns its node_modules directory.
func StrapiClientModules(logW io.Writer) (string, error) {
	strapiClientOnce.Do(func() {
		strapiClientNM, strapiClientErr = runScript(logW, "ensure-strapi-client.sh")
	})
	return strapiClientNM, strapiClientErr
}

// StrapiClientResult is what scripts/strapi-client-probe.js printed.
type StrapiClientResult struct {
	OK     bool             `json:"ok"`
	Status int              `json:"status"`
	Data   []map[string]any `json:"data"`
	Error  string           `json:"error"`
	Body   map[string]any   `json:"body"`
	Raw    string           `json:"-"`
}

// StrapiClientFind runs `strapi({baseURL, auth: token, headers}).collection(collection).find()`
// with the official client in Node (scripts/strapi-client-probe.js). Names under .localhost in
// baseURL reach 127.0.0.1 with that Host.
func StrapiClientFind(logW io.Writer, baseURL, token, collection string, headers map[string]string) (*StrapiClientResult, error) {
	nm, err := StrapiClientModules(logW)
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "NODE_PATH="+nm, "STRAPI_URL="+baseURL, "STRAPI_TOKEN="+token, "STRAPI_COLLECTION="+collection)
	if headers != nil {
		raw, _ := json.Marshal(headers)
		env = append(env, "STRAPI_HEADERS="+string(raw))
	}
	var out, errb bytes.Buffer
	cmd := exec.Command("node", filepath.Join(root, "scripts", "strapi-client-probe.js"))
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("strapi-client-probe.js: %v\n%s", err, tailString(errb.String(), 20))
	}
	res := &StrapiClientResult{Raw: out.String()}
	if err := json.Unmarshal(out.Bytes(), res); err != nil {
		return nil, fmt.Errorf("strapi-client-probe.js printed %q: %v (stderr %s)", out.String(), err, errb.String())
	}
	return res, nil
}
