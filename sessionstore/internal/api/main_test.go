package api

import (
	"os"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
)

// TestMain stops the FerretDB the mongo benchmarks may have started.
func TestMain(m *testing.M) {
	code := m.Run()
	ferret.StopShared()
	os.Exit(code)
}
