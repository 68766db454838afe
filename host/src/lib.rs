//! Osler's trusted host: patient records, identity and access, the audit trail, storage and
//! HTTP. One module per concern:
//!
//! - [`config`]: `osler.toml` and environment overrides;
//! - [`storage`]: the narrow storage interface, its fjall and sled backends, and group-commit durability;
//! - [`audit`]: the append-only, hash-chained audit trail;
//! - [`access`]: roles, permissions, the per-request context, and the one audited gate every
//!   entry point (HTTP handler, plugin host call, command) asks "may this caller do this?";
//! - [`auth`]: users, passwords, sessions and sign-in throttling;
//! - [`sites`]: the clinic's locations;
//! - [`patients`]: FHIR R4 demographics, validation, indexes and search;
//! - [`plugins`]: the WebAssembly plugin runtime, its capabilities and lifecycle;
//! - [`http`]: the JSON API, the pages and the server;
//! - [`app`]: an open data directory with its services; [`cli`]: the `osler` command;
//! - [`demo`]: synthetic demo data; [`memory`]: the allocator's set-up.
//!
//! Dependencies point one way: storage ← audit ← access ← patients ← plugins ← http ← cli.
//! A lower layer is given the few services it needs (the plugin runtime gets
//! [`plugins::Services`]), never the application around it.

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod memory;
pub mod patients;
pub mod plugins;
pub mod sites;
pub mod storage;
