#!/usr/bin/env bash
# Fetches the source of the protobuf-c runtime this host links (Debian's source package of
# the installed libprotobuf-c-dev, e.g. 1.4.1-1) into DIR and prints the unpacked tree's
# path, for the fuzz build to compile in with the fuzzer's instrumentation.
#   tests/fuzz/protobuf-c-source.sh DIR
# apt checks the archive's signed Sources index and each file's hash. The host's apt
# sources need no deb-src line: a private list, state and cache under DIR are used, from
# $FR_DEBIAN_MIRROR (default http://deb.debian.org/debian) and this release's codename.
# A tree already unpacked in DIR is reused, so only the first fuzz build needs the network.
set -euo pipefail
dir=${1:?usage: protobuf-c-source.sh DIR}
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)   # apt reads relative Dir:: paths from /
ver=$(dpkg-query -W -f='${source:Version}' libprotobuf-c-dev 2>/dev/null) ||
  { echo "protobuf-c-source.sh: libprotobuf-c-dev is not installed (deploy/install-deps.sh)" >&2; exit 1; }
upstream=${ver%-*}
tree="$dir/protobuf-c-$upstream"
if [ -f "$tree/protobuf-c/protobuf-c.c" ]; then echo "$tree"; exit 0; fi
. /etc/os-release
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial"
cat >"$dir/apt/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${FR_DEBIAN_MIRROR:-http://deb.debian.org/debian} ${VERSION_CODENAME:?} main
LIST
apt_opts=(-o "Dir::Etc::SourceList=$dir/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State=$dir/apt" -o "Dir::Cache=$dir/apt/cache" -o APT::Sandbox::User=root -qq)
apt-get "${apt_opts[@]}" update >&2
(cd "$dir" && apt-get "${apt_opts[@]}" source --download-only "protobuf-c=$ver" >&2)
tar -xzf "$dir/protobuf-c_$upstream.orig.tar.gz" -C "$dir"
[ -f "$tree/protobuf-c/protobuf-c.c" ] ||
  { echo "protobuf-c-source.sh: $tree/protobuf-c/protobuf-c.c missing from the source package" >&2; exit 1; }
echo "$tree"
