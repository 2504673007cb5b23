#!/usr/bin/env bash
# Installs Node 24 and n8n 2.41.1 from the npm registry into a cache outside the repository,
# for the n8n community node's build and end-to-end tests. A no-op when the cache is complete.
# Prints nothing on success but the two paths (NODE_BIN=..., N8N_BIN=...) on the last lines.
set -euo pipefail

CACHE="${CODETETHER_CACHE_DIR:-$HOME/.cache/codetether}"
NODE_MAJOR=24
N8N_VERSION=2.41.1
NODE_DIR="$CACHE/node-$NODE_MAJOR"
N8N_DIR="$CACHE/n8n-$N8N_VERSION"
mkdir -p "$CACHE"

# One installer at a time per cache (parallel CI jobs share it).
exec 9>"$CACHE/.install-n8n.lock"
flock 9

if [ ! -f "$NODE_DIR/.complete" ]; then
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  (cd "$NODE_DIR" && echo '{"private":true}' > package.json \
    && npm install --no-audit --no-fund --loglevel=error "node@$NODE_MAJOR")
  "$NODE_DIR/node_modules/.bin/node" --version >/dev/null
  touch "$NODE_DIR/.complete"
fi
export PATH="$NODE_DIR/node_modules/.bin:$PATH"

if [ ! -f "$N8N_DIR/.complete" ]; then
  rm -rf "$N8N_DIR" && mkdir -p "$N8N_DIR"
  # n8n-nodes-base pins xlsx to a CDN tarball; the registry's 0.18.5 is the same code line.
  # Install scripts are skipped (they download prebuilt binaries); the two native modules
  # n8n needs are rebuilt from source against Node 24 below.
  (cd "$N8N_DIR" \
    && echo '{"private":true,"overrides":{"xlsx":"0.18.5"}}' > package.json \
    && npm install --no-audit --no-fund --loglevel=error --ignore-scripts "n8n@$N8N_VERSION" \
    && npm rebuild sqlite3 isolated-vm)
  "$N8N_DIR/node_modules/.bin/n8n" --version >/dev/null
  touch "$N8N_DIR/.complete"
fi

echo "NODE_BIN=$NODE_DIR/node_modules/.bin/node"
echo "N8N_BIN=$N8N_DIR/node_modules/.bin/n8n"
