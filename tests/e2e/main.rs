//! End-to-end tests of the real `osler` binary: each test starts its own server on a free port
//! with a temporary data directory and drives it over HTTP like a user or client would.
//!
//! Run with `cargo test -p osler-host --test e2e`. The FHIR test needs Node.js and
//! `npm ci --prefix tests/fhir`; the browser test needs `npm ci --prefix tests/browser` and
//! Chromium (`apt-get install chromium`).

mod support;

mod admin;
mod answers;
mod audit;
mod auth;
mod browser;
mod browser_phr;
mod caisi;
mod durability;
mod encounter;
mod federation;
mod fhir;
mod first_party;
mod hostile;
mod logs;
mod pages;
mod patients;
mod phr;
mod plugins;
mod polyglot;
mod prescribing;
mod prescription_safety;
mod registry;
mod research;
mod resources;
mod scheduling;
mod schemathesis;
mod search;
mod shell;
mod storage;
