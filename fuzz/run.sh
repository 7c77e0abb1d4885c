#!/bin/sh
# Runs every fuzz target of the module for $FUZZTIME each (a duration such
# as 60s, or a count of executions such as 20000x), one after the other
# (go test -fuzz takes one target at a time). Targets are found with
# go test -list, so a new FuzzX is picked up without editing this file.
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" when a worker is still busy at the deadline
# (go.dev/issue/75804, fixed in Go 1.27): no input failed and none is
# written. Such a run counts as passed; any run that writes a failing
# input to testdata/fuzz, or fails otherwise, fails. Counts (Nx) have no
# deadline and avoid the race altogether; make test uses them.
set -eu
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
for pkg in $pkgs; do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target for $FUZZTIME"
		before=$(ls "$pkg/testdata/fuzz/$target" 2>/dev/null | wc -l)
		if $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
			tail -n 2 "$log"
			continue
		fi
		after=$(ls "$pkg/testdata/fuzz/$target" 2>/dev/null | wc -l)
		if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$log" &&
			[ "$(grep -c -- '--- FAIL' "$log")" = 1 ]; then
			echo "fuzz: $target stopped by go.dev/issue/75804 at its deadline; no failing input: passed"
			continue
		fi
		cat "$log"
		exit 1
	done
done
