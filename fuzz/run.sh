#!/bin/sh
# Runs every fuzz target of the module for $FUZZTIME each, one after the
# other (go test -fuzz takes one target at a time). Targets are found with
# go test -list, so a new FuzzX is picked up without editing this file.
set -eu
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-60s}
cd "$(dirname "$0")/.."
pkgs=$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u)
for pkg in $pkgs; do
	for target in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $target for $FUZZTIME"
		$GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done
