#!/usr/bin/env bash
# Installs Node 22 (from the npm registry, into the cache outside the repository that
# integrations/zapier/scripts/check.sh also uses) and the locked MCP conformance suite (npm ci,
# again only when package-lock.json changed). Prints NODE_BIN=<path of node> on its last line.
set -euo pipefail
cd "$(dirname "$0")"

CACHE="${CODETETHER_CACHE_DIR:-$HOME/.cache/codetether}"
NODE_DIR="$CACHE/node-22"
NODE_BIN="$NODE_DIR/node_modules/node/bin"
mkdir -p "$CACHE"
# One installer at a time per cache (parallel test runs share it).
exec 9>"$CACHE/.install-node-22.lock"
flock 9
if ! "$NODE_BIN/node" --version 2>/dev/null | grep -q '^v22\.'; then
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error node@22)
fi
export PATH="$NODE_BIN:$PATH"

stamp=node_modules/.lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
echo "NODE_BIN=$NODE_BIN/node"
