# Strapi Access Proxy. `make demo` runs it, `make test` proves it (see README).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
MODULE := github.com/strapi-access-proxy/accessproxy
CACHE ?= $(or $(ACCESSPROXY_CACHE),$(HOME)/.cache/strapi-access-proxy)
include scripts/versions.env
YAEGI := $(shell go env GOPATH)/bin/yaegi
# golangci-lint is built from the Go module proxy into a folder of its own per version.
GOLANGCI_LINT := $(CACHE)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
# An execution count, not a duration: a duration races Go's fuzz coordinator at its deadline and
# fails with a bare "context deadline exceeded" on a busy machine (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME ?= 20000x

.PHONY: all lint test unit yaegi_test fuzz diff_test store_test deploy_test prereqs e2e demo bench tools clean

all: lint test

tools: $(YAEGI) $(GOLANGCI_LINT)

$(GOLANGCI_LINT):
	GOFLAGS= GOBIN=$(dir $@) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(YAEGI):
	GOFLAGS= go install github.com/traefik/yaegi/cmd/yaegi@$(YAEGI_VERSION)

# Lint fails when it cannot run: `make tools` installs the pinned golangci-lint.
lint: $(GOLANGCI_LINT)
	@gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	go vet ./...
	$(GOLANGCI_LINT) run ./...
	cd e2e && go vet ./...
	$(MAKE) -C sessionstore lint GOLANGCI_LINT=$(GOLANGCI_LINT)

# Every test: plugin unit tests (go and yaegi), short fuzz runs, the session store, the e2e suite.
test: unit yaegi_test fuzz diff_test store_test deploy_test e2e

unit:
	go test -race -count=1 ./...

yaegi_test: $(YAEGI)
	@scripts/yaegi-test.sh "$(YAEGI)" "$(MODULE)"

fuzz:
	go test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzSwapLoginBody$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzNormalizePath$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzGraphQLParse$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzReadBodyFields$$' -fuzztime $(FUZZTIME) .

# readBodyFields against Strapi 5.54's own body parser (scripts/strapi-body-echo.js, run by node on
# the cached e2e Strapi node_modules): every request of the corpus, parsed by both.
diff_test:
	@nm=$$(scripts/ensure-strapi.sh); ACCESSPROXY_STRAPI_NODE_MODULES="$$nm" go test -count=1 -run '^(TestBodyParity|TestGraphQLParity|TestDeviceNameParity)$$' -v .

# The postgres backend's tests start throwaway clusters from Debian's postgresql (installed when
# missing); ACCESSPROXY_REQUIRE_POSTGRES makes them fail, never skip, without it.
store_test:
	@scripts/ensure-postgres.sh >/dev/null
	ACCESSPROXY_REQUIRE_POSTGRES=1 $(MAKE) -C sessionstore test

# The deployment examples and catalog readiness (tools/deploycheck: Traefik CRDs, Kubernetes OpenAPI, Yaegi,
# the real Traefik's CRD provider). -mod=mod: it imports the e2e harness, whose requirements may move.
deploy_test:
	cd tools/deploycheck && GOFLAGS=-mod=mod go test -count=1 ./...

# The real parts the e2e suite runs, built or installed once into $(CACHE) (cold: Traefik ~15 min,
# Strapi ~5 min, FerretDB ~2 min on 2 cores), so the suite's own timeout covers tests only.
prereqs:
	@mkdir -p $(CACHE)
	@t=$$(date +%s); scripts/ensure-traefik.sh >/dev/null; echo "traefik ready ($$(( $$(date +%s) - t ))s)"
	@t=$$(date +%s); scripts/ensure-strapi.sh >/dev/null; echo "strapi ready ($$(( $$(date +%s) - t ))s)"
	@t=$$(date +%s); scripts/ensure-ferretdb.sh >/dev/null; echo "ferretdb ready ($$(( $$(date +%s) - t ))s)"
	@t=$$(date +%s); scripts/ensure-postgres.sh >/dev/null; echo "postgres ready ($$(( $$(date +%s) - t ))s)"

e2e: prereqs
	cd e2e && go test -count=1 -timeout 30m -v ./... 2>&1 | tee $(CACHE)/e2e-last.log | ../scripts/summary.sh

demo:
	@scripts/demo.sh

# Benchmarks: the plugin in real Traefik (wrk), then the session store's get/touch on bolt and mongo.
bench:
	@scripts/bench.sh
	$(MAKE) -C sessionstore bench
