#!/bin/sh
# install-deps.sh: install the Debian packages rightsview needs, only those
# missing. Idempotent; runs `apt-get update` only when something must be
# installed. Meant for a fresh Debian 12 as root (sudo is used otherwise).
#
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --browser  also chromium (dashboard browser test)
set -eu

PKGS="build-essential cmake pkg-config git ca-certificates
libzmq3-dev liblmdb-dev lmdb-utils libwebsockets-dev libcjson-dev
libcurl4-openssl-dev libzip-dev libssl-dev
python3 python3-zmq python3-websockets
clang libclang-rt-14-dev"

for arg in "$@"; do
    case "$arg" in
    --browser) PKGS="$PKGS chromium" ;;
    --bench) PKGS="$PKGS postgresql wrk" ;;
    -h|--help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

# node and npm: the machine may already have them (e.g. from another
# repository); take Debian's only when neither is on PATH.
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
