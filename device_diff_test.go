package accessproxy

import (
	"bufio"
	"encoding/hex"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeviceNameParity runs every User-Agent of the corpus through Strapi 5.54's own
// getDeviceName (@strapi/utils/dist/user-agent.js, from the e2e Strapi app's node_modules) and
// through deviceName, and wants the same label for each. Node reads header bytes as latin1, so the
// script is handed the bytes and decodes them so. `make diff_test` runs it.
func TestDeviceNameParity(t *testing.T) {
	nm := os.Getenv("ACCESSPROXY_STRAPI_NODE_MODULES")
	if nm == "" {
		t.Skip("ACCESSPROXY_STRAPI_NODE_MODULES is not set: `make diff_test` runs this test against Strapi's user-agent.js")
	}
	corpus := userAgentCorpus()
	script := `const { getDeviceName } = require(process.argv[1]);
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (l) => { process.stdout.write((getDeviceName(Buffer.from(l, 'hex').toString('latin1')) ?? '') + '\n'); });`
	cmd := exec.Command("node", "-e", script, filepath.Join(nm, "@strapi/utils/dist/user-agent.js"))
	var in strings.Builder
	for _, ua := range corpus {
		in.WriteString(hex.EncodeToString([]byte(ua)))
		in.WriteByte('\n')
	}
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	named := map[string]int{}
	i := 0
	for sc.Scan() {
		if i >= len(corpus) {
			t.Fatalf("node answered more lines than it was given")
		}
		want := sc.Text()
		req := &http.Request{Header: http.Header{"User-Agent": {corpus[i]}}}
		if got := deviceName(req); got != want {
			t.Errorf("User-Agent %q: Strapi names it %q, the proxy %q", corpus[i], want, got)
		}
		named[want]++
		i++
	}
	if i != len(corpus) {
		t.Fatalf("node answered %d of %d lines", i, len(corpus))
	}
	if len(named) < 30 {
		t.Errorf("the corpus reaches only %d distinct labels: %v", len(named), named)
	}
	t.Logf("%d User-Agents, %d distinct labels", len(corpus), len(named))
}

// userAgentCorpus is real browsers' headers, then Strapi's tokens in random company: at and off
// word boundaries, truncated, around the 1024-byte clamp, with latin1 bytes.
func userAgentCorpus() []string {
	out := []string{
		"",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 YaBrowser/24.1.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.0.0",
		"curl/8.5.0", "node", "undici", "okhttp/4.12.0", "Go-http-client/1.1", "PostmanRuntime/7.36.0",
	}
	tokens := []string{"Edg/", "Edge/", "EdgA/", "EdgiOS/", "Edg", "Edgx/", "OPR/", "Opera/", "SamsungBrowser/", "Vivaldi/",
		"YaBrowser/", "Yowser/", "Brave/", "Firefox/", "FxiOS/", "Chrome/", "CriOS/", "Chromium/", "Safari/",
		"Version/1.2 Safari/", "Version/17.0 Mobile/15E148 Safari/", "Windows NT", "Windows NTx", "iPhone", "iPad", "iPod",
		"iPhoneX", "Android", "Androidy", "Macintosh", "Mac OS X", "Mac OS Xz", "CrOS", "Linux", "Linuxy", "linux", "chrome/"}
	seps := []string{" ", "", "_", "x", "1", "/", ";", "(", ")", "-", ".", "\t", "\xe9", "\xa0", "\xff", ":"}
	r := rand.New(rand.NewSource(13))
	for n := 0; n < 4000; n++ {
		var b strings.Builder
		k := 1 + r.Intn(5)
		for j := 0; j < k; j++ {
			b.WriteString(seps[r.Intn(len(seps))])
			b.WriteString(tokens[r.Intn(len(tokens))])
			b.WriteString(seps[r.Intn(len(seps))])
		}
		out = append(out, strings.TrimSpace(b.String()))
	}
	// Around the clamp: a token that starts before byte 1024 but ends after it, and one right after.
	pad := strings.Repeat("a", 1024)
	for _, cut := range []int{1, 4, 6, 7, 8, 20} {
		for _, tok := range []string{"Chrome/1", "Safari/1", " Linux ", " Windows NT ", " iPhone;"} {
			out = append(out, "x "+pad[:1024-2-cut]+tok+" Firefox/1")
		}
	}
	return out
}
