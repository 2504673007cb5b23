#!/usr/bin/env bash
# Runs the pinned Redocly CLI (package-lock.json) on an OpenAPI document with redocly.yaml:
#   bash tests/conformance/openapi/lint.sh DOCUMENT [redocly lint options]
# Called by test_redocly_lint.py (so by `make test`). Redocly needs Node 20.19+ or 22.12+: the
# machine's node when it is one, else Node 22 from the npm registry, cached outside the repository
# like integrations/zapier/scripts/check.sh does. `npm ci` runs again only when the lockfile changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

node_ok() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
           process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a > 22 ? 0 : 1)' 2>/dev/null
}
if ! command -v node >/dev/null 2>&1 || ! node_ok node; then
  CACHE="${CODETETHER_CACHE_DIR:-$HOME/.cache/codetether}"
  NODE_DIR="$CACHE/node-22"
  NODE_BIN="$NODE_DIR/node_modules/node/bin"
  if ! node_ok "$NODE_BIN/node"; then
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error node@22 >&2)
  fi
  export PATH="$NODE_BIN:$PATH"
fi

cd "$here"
stamp=node_modules/.lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi
# No usage reports and no update check: the run must not depend on anything but the registry.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec node_modules/.bin/redocly lint --config "$here/redocly.yaml" "$@"
