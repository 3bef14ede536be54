#!/usr/bin/env bash
# Builds the real-peer test programs into peers/build/ (gitignored):
#   purplepeer  (peers/purplepeer/purplepeer.c, libpurple 2.14 from Debian libpurple-dev)
#   qxmpppeer   (peers/qxmpppeer/qxmpppeer.cpp, QXmpp 1.4 / Qt 5 from Debian libqxmpp-dev)
# Idempotent: each program is rebuilt only when the checksum of its source, this script and
# its pkg-config flags changed (stamp files next to the binaries). scripts/test installs the
# packages and calls this; run it by hand after editing a peer.
set -euo pipefail
cd "$(dirname "$0")"
OUT=build
mkdir -p "$OUT"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
NICE="nice -n 5"

build() { # name, source, compiler, std flags, pkg-config modules...
    local name=$1 src=$2 compiler=$3 std=$4
    shift 4
    local flags sum
    flags="$(pkg-config --cflags --libs "$@")"
    sum="$(cat "$src" build.sh | sha256sum | cut -d' ' -f1)-$(echo "$compiler $std $flags" | sha256sum | cut -c1-16)"
    if [ -x "$OUT/$name" ] && [ "$(cat "$OUT/$name.stamp" 2>/dev/null)" = "$sum" ]; then
        echo "peers/build/$name is up to date"
        return 0
    fi
    echo "building peers/build/$name"
    # shellcheck disable=SC2086
    $NICE "$compiler" $std -O1 -g -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
        -Wno-deprecated-declarations -o "$OUT/$name.tmp" "$src" $flags -ldl
    mv "$OUT/$name.tmp" "$OUT/$name"
    echo "$sum" >"$OUT/$name.stamp"
}

build purplepeer purplepeer/purplepeer.c "$CC" "-std=gnu11" purple glib-2.0
build qxmpppeer qxmpppeer/qxmpppeer.cpp "$CXX" "-std=c++17 -fPIC" qxmpp Qt5Core Qt5Network
