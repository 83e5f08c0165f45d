package accessproxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestNewRefusesBadConfig(t *testing.T) {
	base := func() *Config {
		c := CreateConfig()
		c.Secret, c.StoreURL, c.StoreToken = testSecret, "http://127.0.0.1:1", testStoreToken
		return c
	}
	cases := map[string]func(*Config){
		"short secret":       func(c *Config) { c.Secret = "short" },
		"placeholder secret": func(c *Config) { c.Secret = "changeme-changeme-changeme-changeme-123" },
		"repetitive secret":  func(c *Config) { c.Secret = strings.Repeat("ab", 20) },
		"short previous":     func(c *Config) { c.PreviousSecrets = []string{"x"} },
		"no store":           func(c *Config) { c.StoreURL = "" },
		"bad store url":      func(c *Config) { c.StoreURL = "ftp://x" },
		"short store token":  func(c *Config) { c.StoreToken = "t" },
		"bad duration":       func(c *Config) { c.IdleTimeout = "30" },
		"zero idle":          func(c *Config) { c.IdleTimeout = "0s" },
		"bad refresh mode":   func(c *Config) { c.RefreshTokens = "sometimes" },
		"bad cidr":           func(c *Config) { c.AdminAllowFrom = []string{"10.0.0.0"} },
		"bad header":         func(c *Config) { c.UpstreamHeaders = map[string]string{"X-Key": "a\r\nb"} },
	}
	for name, mutate := range cases {
		c := base()
		mutate(c)
		if _, err := New(context.Background(), http.NotFoundHandler(), c, "x"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(context.Background(), http.NotFoundHandler(), base(), "x"); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestCatalogTestDataBuilds(t *testing.T) {
	raw, err := io.ReadAll(mustOpen(t, ".traefik.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := CreateConfig()
	inTestData := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "testData:") {
			inTestData = true
			continue
		}
		if !inTestData || !strings.HasPrefix(line, "  ") {
			continue
		}
		kv := strings.SplitN(strings.TrimSpace(line), ":", 2)
		v := strings.Trim(strings.TrimSpace(kv[1]), `"`)
		switch kv[0] {
		case "secret":
			cfg.Secret = v
		case "storeURL":
			cfg.StoreURL = v
		case "storeToken":
			cfg.StoreToken = v
		case "idleTimeout":
			cfg.IdleTimeout = v
		case "maxLifetime":
			cfg.MaxLifetime = v
		default:
			t.Fatalf("testData key %q not handled by this test", kv[0])
		}
	}
	if _, err := New(context.Background(), http.NotFoundHandler(), cfg, "catalog"); err != nil {
		t.Fatalf("New from testData: %v", err)
	}
}
