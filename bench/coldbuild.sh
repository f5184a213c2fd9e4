#!/usr/bin/env bash
# Cold build of k3ha: `go build` with an empty temporary GOCACHE, so every
# package (Kubernetes included) is compiled; the real cache is not touched.
# Prints wall time and peak RSS and replaces the coldbuild section of
# bench/RESULTS.md. Modules are downloaded first so that the network is not
# part of the figure. Takes about 10 minutes on two cores: run it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
results=bench/RESULTS.md

tmp=$(mktemp -d /tmp/k3ha-coldbuild.XXXXXX)
# The temporary cache grows to several GB; never leave it behind.
trap 'rm -rf "$tmp"' EXIT

go mod download
load0=$(cut -d' ' -f1-3 /proc/loadavg)
begin=$(date -u '+%Y-%m-%d %H:%M UTC')
# Same link flags as `make build` minus the version stamps, which cost nothing.
cmd=(go build -ldflags '-s -w' -o "$tmp/k3ha" ./cmd/k3ha)
shown="GOCACHE=<empty temp dir> go build -ldflags '-s -w' -o <tmp>/k3ha ./cmd/k3ha"
echo "cold build: GOCACHE=$tmp/gocache ${cmd[*]}" >&2

if [ -x /usr/bin/time ]; then
	GOCACHE="$tmp/gocache" /usr/bin/time -v -o "$tmp/time.txt" "${cmd[@]}"
	field() { sed -n "s/^[[:space:]]*$1: //p" "$tmp/time.txt"; }
	# Elapsed is h:mm:ss or m:ss.ss; turn it into seconds.
	wall=$(field 'Elapsed (wall clock) time (h:mm:ss or m:ss)' |
		awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.1f", s }')
	peak_kb=$(field 'Maximum resident set size (kbytes)')
	user=$(field 'User time (seconds)')
	sys=$(field 'System time (seconds)')
	peak=$(awk -v k="$peak_kb" 'BEGIN { printf "%.0f MB", k * 1024 / 1e6 }')
	cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f s", u + s }')
	ratio=$(awk -v u="$user" -v s="$sys" -v w="$wall" 'BEGIN { printf "%.2f", (u + s) / w }')
else
	start=$(date +%s.%N)
	GOCACHE="$tmp/gocache" "${cmd[@]}"
	wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	peak="n/a (no /usr/bin/time)" cpu="n/a" ratio="n/a"
fi
cache=$(du -sh "$tmp/gocache" | cut -f1)
size=$(stat -c %s "$tmp/k3ha" | awk '{ printf "%.0f MB", $1 / 1e6 }')
mins=$(awk -v w="$wall" 'BEGIN { printf "%d min %02d s", w / 60, w % 60 }')

echo "cold build: wall ${wall} s (${mins}), peak RSS ${peak}, CPU ${cpu}, CPU/wall ${ratio}"

commit=$(git rev-parse --short=12 HEAD)
# RESULTS.md changes with every run, so it does not count.
if [ -n "$(git status --porcelain --untracked-files=no -- . ':!bench/RESULTS.md')" ]; then
	commit="$commit (plus uncommitted changes in the working tree)"
fi
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)

cat >"$tmp/section.md" <<EOF
## Build: cold (empty GOCACHE)

- date: $begin
- machine: nproc $(nproc), $mem RAM, kernel $(uname -r), $model, $(go env GOVERSION)
- load average before/after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg)
- commit: $commit
- command: \`bench/coldbuild.sh\` (runs \`$shown\`)

Modules were already downloaded; everything else, cgo (SQLite) included, is compiled. Peak RSS is
the largest single process of the build.

| wall | CPU (user+sys) | CPU/wall | peak RSS | cache written | binary size |
|---|---|---|---|---|---|
| **${wall} s** (${mins}) | $cpu | $ratio | $peak | $cache | $size |
EOF

# Replace only our own section; append it if the markers are missing.
start_marker='<!-- coldbuild:start -->'
end_marker='<!-- coldbuild:end -->'
[ -f "$results" ] || printf '# k3ha benchmark results\n' >"$results"
awk -v s="$start_marker" -v e="$end_marker" -v body="$tmp/section.md" '
	$0 == s { print; while ((getline line < body) > 0) print line; skip = 1; found = 1; next }
	$0 == e { skip = 0 }
	!skip { print }
	END {
		if (!found) {
			print ""; print s
			while ((getline line < body) > 0) print line
			print e
		}
	}' "$results" >"$tmp/results.md"
cp "$tmp/results.md" "$results"
echo "updated the coldbuild section of $results" >&2
