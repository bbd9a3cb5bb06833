#!/usr/bin/env bash
# Test tools from other stacks, where the machine has them (the tests that need one skip without it):
# node-opcua, an OPC UA server nobody here wrote, from the npm registry at the versions the lock file pins.
set -uo pipefail
cd "$(dirname "$0")"
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
  if [ ! -d node-opcua/node_modules ] || [ node-opcua/package-lock.json -nt node-opcua/node_modules ]; then
    echo "test tools: installing node-opcua (npm) for the OPC UA interoperability tests"
    (cd node-opcua && npm ci --no-audit --no-fund --silent) || echo "test tools: node-opcua not installed: its tests skip" >&2
  fi
else
  echo "test tools: no node/npm: the OPC UA interoperability tests against node-opcua skip" >&2
fi
exit 0
