package api

import (
	"os"
	"testing"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/ferret"
	pgtest "github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb/postgres"
)

// TestMain stops the FerretDB and the PostgreSQL clusters the benchmarks may have started.
func TestMain(m *testing.M) {
	code := m.Run()
	ferret.StopShared()
	pgtest.StopShared()
	stopBenchClusters()
	os.Exit(code)
}
