//! The host interfaces plugins import, one file per capability. Each gets a narrow view of
//! the sandbox — a [`Cx`] (the call, the gate, the limits, the reads not yet durable) and the
//! one service it implements — implements its WIT `Host` trait on that view, and checks its
//! own grant on every call through the gate; none trusts anything the plugin says about who
//! is calling.
//!
//! [`link`] adds them to a linker, each interface with the getter of its own view (wasmtime's
//! `add_to_linker(linker, |state| state.x())`).

mod audit;
mod clock;
mod config;
mod directory;
mod events;
mod kv;
mod log;
mod outbound;
mod patients;

use wasmtime::component::{HasData, Linker};

use super::sandbox::{Cx, Sandbox};
use super::v0_1::osler::plugin as v0_1;

pub use audit::AuditView;
pub use clock::ClockView;
pub use config::ConfigView;
pub use directory::DirectoryView;
pub use events::EventsView;
pub use kv::KvView;
pub use log::LogView;
pub use outbound::OutboundView;
pub use patients::PatientsView;

/// `types` has no functions; its view is empty.
pub struct TypesView;

impl v0_1::types::Host for TypesView {}

/// Names, for wasmtime's `HasData`, the view each capability gets.
macro_rules! views {
    ($($marker:ident => $view:ident),* $(,)?) => {
        $(
            pub struct $marker;
            impl HasData for $marker {
                type Data<'a> = $view<'a>;
            }
        )*
    };
}

views! {
    Audit => AuditView,
    Clock => ClockView,
    Config => ConfigView,
    Directory => DirectoryView,
    Events => EventsView,
    Kv => KvView,
    Log => LogView,
    Outbound => OutboundView,
    Patients => PatientsView,
}

pub struct Types;
impl HasData for Types {
    type Data<'a> = TypesView;
}

/// Add the host interfaces of `osler:plugin@0.1.0` to `linker`, each with its own view.
pub fn link_v0_1(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    v0_1::types::add_to_linker::<_, Types>(linker, |_| TypesView)?;
    v0_1::log::add_to_linker::<_, Log>(linker, Sandbox::log_view)?;
    v0_1::clock::add_to_linker::<_, Clock>(linker, Sandbox::clock_view)?;
    v0_1::config::add_to_linker::<_, Config>(linker, Sandbox::config_view)?;
    v0_1::audit::add_to_linker::<_, Audit>(linker, Sandbox::audit_view)?;
    v0_1::patients_read::add_to_linker::<_, Patients>(linker, Sandbox::patients_view)?;
    v0_1::patients_write::add_to_linker::<_, Patients>(linker, Sandbox::patients_view)?;
    v0_1::patients_deidentified::add_to_linker::<_, Patients>(linker, Sandbox::patients_view)?;
    v0_1::patients_match::add_to_linker::<_, Patients>(linker, Sandbox::patients_view)?;
    v0_1::kv::add_to_linker::<_, Kv>(linker, Sandbox::kv_view)?;
    v0_1::events::add_to_linker::<_, Events>(linker, Sandbox::events_view)?;
    v0_1::directory::add_to_linker::<_, Directory>(linker, Sandbox::directory_view)?;
    v0_1::outbound_http::add_to_linker::<_, Outbound>(linker, Sandbox::outbound_view)?;
    Ok(())
}
