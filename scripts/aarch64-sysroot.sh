#!/usr/bin/env bash
# Builds (once) an aarch64 Debian 12 sysroot holding CPython 3.11 and its run-time libraries, for
# cross-building and running the enigma-edge wheel under qemu-aarch64. Prints the sysroot path.
#
# No host package changes: apt runs against a private state directory (its own sources list,
# lists and archive cache under the cache dir, arm64 only), `apt-get download` fetches the .debs
# from Debian's archive and `dpkg-deb -x` unpacks them. Cached in
# ${ENIGMA_EDGE_CACHE:-~/.cache/enigma-edge}/aarch64-sysroot; a second run returns at once.
set -euo pipefail
cache=${ENIGMA_EDGE_CACHE:-$HOME/.cache/enigma-edge}
sysroot=$cache/aarch64-sysroot
stamp=$sysroot/.complete
if [ -f "$stamp" ]; then echo "$sysroot"; exit 0; fi

apt_dir=$cache/apt-arm64
debs=$cache/aarch64-debs
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$debs"
: > "$apt_dir/status"
cat > "$apt_dir/sources.list" <<SRC
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SRC
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
  -o "Dir::Cache=$apt_dir" -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
)
echo "aarch64 sysroot: apt-get update (private state in $apt_dir)" >&2
apt-get "${apt_opts[@]}" update -qq >&2
# CPython 3.11 (interpreter, stdlib, headers + sysconfigdata) and what its modules link against.
pkgs=(
  python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11 libpython3.11-dev
  libc6 libstdc++6 libgcc-s1 libexpat1 zlib1g libffi8 libssl3 libbz2-1.0 liblzma5
  libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 libcrypt1 libdb5.3 libgdbm6 media-types
)
echo "aarch64 sysroot: downloading ${#pkgs[@]} arm64 packages" >&2
(cd "$debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}" >&2)
rm -rf "$sysroot.tmp"
mkdir -p "$sysroot.tmp"
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$sysroot.tmp"; done
rm -rf "$sysroot"
mv "$sysroot.tmp" "$sysroot"
date -u +%FT%TZ > "$stamp"
echo "aarch64 sysroot: ready ($(du -sh "$sysroot" | cut -f1))" >&2
echo "$sysroot"
