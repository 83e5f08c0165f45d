package accessproxy

import (
	"io"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	auditOutput = discard
	os.Exit(m.Run())
}

func mustOpen(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func timeNow() time.Time { return time.Now() }

var discard = io.Discard
