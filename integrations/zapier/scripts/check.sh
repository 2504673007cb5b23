#!/usr/bin/env bash
# Installs Node 22 (from the npm registry, cached outside the repository) and the app's locked
# dependencies, then runs Zapier's offline checks: `validate --without-style` and the jest suite
# (`zapier-platform test --skip-validate`) against a live `codetether dev` on loopback.
# Called by `make zapier-test` (part of `make test`); needs the repository's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${CODETETHER_CACHE_DIR:-$HOME/.cache/codetether}"
NODE_DIR="$CACHE/node-22"
NODE_BIN="$NODE_DIR/node_modules/node/bin"
if ! "$NODE_BIN/node" --version 2>/dev/null | grep -q '^v22\.'; then
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error node@22)
fi
export PATH="$NODE_BIN:$PATH"
# The CLI's usage analytics would call Zapier's servers.
export DISABLE_ZAPIER_ANALYTICS=1
echo "zapier app: node $(node --version)"

# npm ci again only when the lockfile changed since the last install.
stamp=node_modules/.lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
npx --no-install zapier-platform validate --without-style
npx --no-install zapier-platform test --skip-validate
