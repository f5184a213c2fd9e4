#!/bin/sh
# stage.sh DIR: copies each module staged.txt lists, at its version, from
# the Go module cache into DIR/<dir>, and lays k3ha's files from
# overlay/<dir> over it. go.mod's replace directives point at those
# copies, so Traefik builds from what the Go module proxy serves (each
# overlay file says why it is there).
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
grep -v '^#' "$here/staged.txt" | while read -r mod version dir; do
	[ -n "$mod" ] || continue
	src=$(cd /tmp && go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] || { echo "stage.sh: go mod download $mod@$version gave no directory" >&2; exit 1; }
	dest=$out/$dir
	rm -rf "$dest.new"
	mkdir -p "$out"
	cp -R "$src" "$dest.new"
	chmod -R u+w "$dest.new"
	cp -R "$here/overlay/$dir/." "$dest.new/"
	# A module published before Go modules has no go.mod of its own.
	[ -f "$dest.new/go.mod" ] || printf 'module %s\n\ngo 1.13\n' "$mod" >"$dest.new/go.mod"
	rm -rf "$dest"
	mv "$dest.new" "$dest"
done
