#!/usr/bin/env bash
# Reads `go test -v` output on stdin, passes it through unchanged, and ends with one line:
#   e2e: N passed, M failed
# counting top-level tests only (`--- PASS: Name` / `--- FAIL: Name` at the start of a line; subtests
# are indented). Exits non-zero when M > 0 or N == 0 (nothing ran is a failure too), or when a package
# FAILed outside any test (build error, timeout, crash).
# Usage: go test -v ./... 2>&1 | scripts/summary.sh [LABEL]   (LABEL defaults to "e2e")
set -uo pipefail
label=${1:-e2e}
pass=0 fail=0 failed=() pkgfail=0
while IFS= read -r line || [ -n "$line" ]; do
  printf '%s\n' "$line"
  case "$line" in
    "--- PASS: "*) pass=$((pass + 1)) ;;
    "--- FAIL: "*)
      fail=$((fail + 1))
      name=${line#--- FAIL: }
      failed+=("${name%% *}")
      ;;
    # A package that failed without a `--- FAIL` line (build error, timeout, panic outside a test).
    FAIL|"FAIL	"*) pkgfail=1 ;;
  esac
done
if [ "$fail" -gt 0 ]; then
  echo "$label failed tests: ${failed[*]}"
fi
if [ "$pkgfail" -eq 1 ] && [ "$fail" -eq 0 ]; then
  echo "$label: a test package FAILED outside any test (build error, timeout or crash): see above"
fi
echo "$label: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ] && [ "$pkgfail" -eq 0 ]
