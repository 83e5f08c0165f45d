package harness

import (
	"os"
	"path/filepath"
)

// noopModule is a Yaegi plugin that only calls the next handler: what any plugin costs in
// Traefik, the floor against which the benchmark reads the accessproxy plugin's own cost.
const noopModule = "github.com/strapi-access-proxy/noop"

var noopFiles = map[string]string{
	"go.mod": "module " + noopModule + "\n\ngo 1.22\n",
	".traefik.yml": `displayName: No-op
type: middleware
import: ` + noopModule + `
summary: Calls the next handler and nothing else (benchmark baseline).
testData: {}
`,
	"noop.go": `package noop

import (
	"context"
	"net/http"
)

type Config struct{}

func CreateConfig() *Config { return &Config{} }

type Noop struct{ next http.Handler }

func New(_ context.Context, next http.Handler, _ *Config, _ string) (http.Handler, error) {
	return &Noop{next: next}, nil
}

func (n *Noop) ServeHTTP(rw http.ResponseWriter, req *http.Request) { n.next.ServeHTTP(rw, req) }
`,
}

func layoutNoopPlugin(dir string) error {
	dst := filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(noopModule))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for name, body := range noopFiles {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
