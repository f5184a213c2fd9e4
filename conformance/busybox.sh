#!/bin/sh
# Builds busybox as upstream's busybox image has it: the release's sources,
# its default configuration, linked statically. Debian's busybox differs
# where conformance specs look: its ash drops environment variables whose
# names are not shell names, which upstream's keeps since 1.36.
# Usage: busybox.sh OUTPUT WORKDIR
set -eu
out=$(realpath -m "$1") work=$(realpath -m "$2")
version=1.37.0
sum=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
# The module proxy serves no C sources; Debian's archive has the release's
# tarball unchanged (same checksum as busybox.net's).
url=http://deb.debian.org/debian/pool/main/b/busybox/busybox_$version.orig.tar.bz2

need=
for tool in gcc:build-essential make:make bzip2:bzip2 curl:curl; do
	command -v "${tool%%:*}" >/dev/null || need="$need ${tool#*:}"
done
[ -n "$(find /usr/lib -name libc.a -print -quit)" ] || need="$need libc6-dev"
if [ -n "$need" ]; then
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $need
fi

mkdir -p "$work"
tarball=$work/busybox-$version.tar.bz2
if ! echo "$sum  $tarball" | sha256sum -c --status 2>/dev/null; then
	curl -fsSL --retry 3 -o "$tarball.part" "$url"
	echo "$sum  $tarball.part" | sha256sum -c --status || { echo "busybox.sh: $url: checksum mismatch" >&2; exit 1; }
	mv "$tarball.part" "$tarball"
fi
src=$work/busybox-$version
rm -rf "$src"
tar -xjf "$tarball" -C "$work"
cd "$src"
make -s defconfig >/dev/null
sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config
grep -qx 'CONFIG_STATIC=y' .config
make -s -j"$(nproc)" busybox >build.log 2>&1 || { tail -20 build.log >&2; exit 1; }
cp busybox "$out.part"
mv "$out.part" "$out"
