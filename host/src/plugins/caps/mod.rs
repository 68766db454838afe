//! The host interfaces plugins import, one file per capability. Each implements its WIT
//! `Host` trait on [`Sandbox`] and checks its own grant on every call
//! ([`Sandbox::allow`]); none trusts anything the plugin says about who is calling.

mod audit;
mod clock;
mod config;
mod directory;
mod events;
mod kv;
mod log;
mod outbound;
mod patients;

use super::sandbox::Sandbox;
use super::v0_1::osler::plugin::types;

impl types::Host for Sandbox {}
