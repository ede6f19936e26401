#!/bin/sh
# build-web.sh: build the dashboard into web/dist/, where rightsviewd serves
# it from. Installs the pinned npm packages (web/package-lock.json) with
# `npm ci` when web/node_modules is missing or older than the lockfile, then
# bundles with esbuild (web/build.mjs). Does nothing when neither the
# sources nor the lockfile changed since the last build. The new dist/ is
# built aside and swapped in by two renames, so a running daemon never
# serves a half-written page.
#
#   scripts/build-web.sh            build if needed
#   scripts/build-web.sh --force    rebuild even if up to date
set -eu

force=0
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    -h|--help)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *) echo "build-web: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

fail() {
    echo "build-web: $*" >&2
    exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
web="$root/web"
[ -f "$web/package.json" ] || fail "$web/package.json not found"
[ -f "$web/package-lock.json" ] || fail "$web/package-lock.json not found"
command -v node >/dev/null 2>&1 || fail "node not found: run scripts/install-deps.sh"
command -v npm >/dev/null 2>&1 || fail "npm not found: run scripts/install-deps.sh"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old: 18 or newer needed"

# One build at a time (make test and make run may race).
lock="${TMPDIR:-/tmp}/rightsview-build-web.$(id -u).lock"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$lock"
    flock -w 300 9 || fail "another build-web holds $lock"
fi

cd "$web"

# 1. npm packages
lock_sum=$(sha256sum package-lock.json package.json | sha256sum | cut -c1-64)
stamp="node_modules/.rightsview-lock.sha256"
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
    echo "build-web: installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1 || {
        cat npm-ci.log >&2
        rm -f npm-ci.log
        fail "npm ci failed (see above); is the npm registry reachable?"
    }
    rm -f npm-ci.log
    echo "$lock_sum" >"$stamp"
fi

# 2. bundle, when an input changed
src_sum=$( (echo "$lock_sum"; find src build.mjs -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-64)
if [ "$force" = 0 ] && [ -f dist/index.html ] && [ -f dist/.build.sha256 ] &&
    [ "$(cat dist/.build.sha256)" = "$src_sum" ]; then
    echo "build-web: web/dist is up to date"
    exit 0
fi

tmp="dist.tmp.$$"
trap 'rm -rf "$web/$tmp" "$web/dist.old.$$"' EXIT
node build.mjs "$tmp" || fail "bundling failed (see above)"
for f in index.html app.js app.css; do
    [ -s "$tmp/$f" ] || fail "bundling produced no $f"
done
echo "$src_sum" >"$tmp/.build.sha256"
if [ -d dist ]; then
    mv dist "dist.old.$$"
fi
mv "$tmp" dist
rm -rf "dist.old.$$"
size=$(cat dist/index.html dist/app.js dist/app.css | wc -c)
echo "build-web: built web/dist ($size bytes)"
