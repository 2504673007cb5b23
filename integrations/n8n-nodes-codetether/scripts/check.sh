#!/usr/bin/env bash
# The package's own checks, as `make n8n-test` and CI run them: Node 24 (cached outside the repo
# by .ci/install-n8n.sh), `npm ci`, `n8n-node lint`, `n8n-node build`, the unit tests and
# `npm pack`. The end-to-end tests in a real n8n are in tests/integrations/n8n (pytest -m n8n).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"

eval "$(bash "$root/.ci/install-n8n.sh" | grep -E '^(NODE_BIN|N8N_BIN)=')"
export PATH="$(dirname "$NODE_BIN"):$PATH"
cd "$here"

# Install scripts are skipped: a dev dependency's preinstall insists on pnpm; none is needed.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npx --no-install n8n-node lint
npx --no-install n8n-node build
npm test
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
npm pack --pack-destination "$out" --loglevel=error >/dev/null
tar -tzf "$out"/n8n-nodes-codetether-*.tgz | sort > "$out/files"
# What users download: the built package only (no sources, tests, scripts or templates).
if grep -vE '^package/(package\.json|README\.md|LICENSE\.md|dist/.*)$' "$out/files"; then
  echo "unexpected files in the packed tarball (above)" >&2
  exit 1
fi
grep -q '^package/dist/nodes/CodeTether/CodeTether.node.js$' "$out/files"
grep -q '^package/dist/nodes/CodeTetherTrigger/CodeTetherTrigger.node.js$' "$out/files"
echo "n8n-nodes-codetether: lint, build, unit tests and pack OK"
