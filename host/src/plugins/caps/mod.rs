//! The host interfaces plugins import, one file per capability. Each gets a narrow view of
//! the sandbox — a [`Cx`] (the call, the gate, the limits, the reads not yet durable) and the
//! one service it implements — implements the current API version's WIT `Host` trait on that
//! view, and checks its own grant on every call through the gate; none trusts anything the
//! plugin says about who is calling. Older versions' `Host` traits delegate to these (see
//! `plugins::v0_1`).
//!
//! Each version module links its interfaces with the getter of each view (wasmtime's
//! `add_to_linker(linker, |state| state.x())`); [`views!`] names the views for `HasData`.

mod audit;
mod clock;
mod config;
mod context;
mod directory;
mod events;
mod kv;
mod log;
mod outbound;
mod patient_data;
mod patients;

use wasmtime::component::HasData;

use super::sandbox::{Cx, Sandbox, trail_failure};

pub use audit::AuditView;
pub use clock::ClockView;
pub use config::ConfigView;
pub use context::ContextView;
pub use directory::DirectoryView;
pub use events::EventsView;
pub use kv::KvView;
pub use log::LogView;
pub use outbound::OutboundView;
pub use patient_data::PatientDataView;
pub use patients::PatientsView;

/// `types` has no functions; its view is empty.
pub struct TypesView;

impl super::v0_1::osler::plugin::types::Host for TypesView {}
impl super::v0_2::osler::plugin::types::Host for TypesView {}

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
    Context => ContextView,
    Directory => DirectoryView,
    Events => EventsView,
    Kv => KvView,
    Log => LogView,
    Outbound => OutboundView,
    PatientData => PatientDataView,
    Patients => PatientsView,
}

pub struct Types;
impl HasData for Types {
    type Data<'a> = TypesView;
}

/// The view getters, for the version modules' linkers.
impl Sandbox {
    pub(crate) fn types_view(&mut self) -> TypesView {
        TypesView
    }
}
