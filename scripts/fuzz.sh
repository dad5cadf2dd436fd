#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each (default 30s).
# `go test -fuzz` takes one target at a time, so this finds them all.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
status=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "== fuzz ./$dir $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir" >/tmp/odoh-fuzz.log 2>&1; then
			cat /tmp/odoh-fuzz.log
			status=1
		else
			tail -n 1 /tmp/odoh-fuzz.log
		fi
	done
done < <(grep -rl --include='*_test.go' '^func Fuzz' . | sed 's|^\./||' | sort)
exit $status
