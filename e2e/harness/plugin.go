package harness

// PluginConfig is an accessproxy middleware configuration pointing at store, signing with secret,
// with test-friendly limits (the login rate limit and lockout are raised so that the many logins of
// a test run from 127.0.0.1 are not throttled), overridden by extra.
func PluginConfig(store *Store, secret string, extra map[string]any) map[string]any {
	c := map[string]any{
		"secret":           secret,
		"storeURL":         store.URL,
		"storeToken":       store.Token,
		"storeTimeout":     "1s",
		"loginRateLimit":   "100000/m",
		"lockoutThreshold": 1000,
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// NewSecret returns a random plugin secret (48 random bytes, base64url).
func NewSecret() string { return RandomString(48) }
