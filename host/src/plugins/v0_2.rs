//! `osler:plugin@0.2.0`: the bindings of the current API version.
//!
//! The host interfaces are implemented once, for this version, on each capability's view in
//! [`caps`](super::caps); `osler:plugin@0.1.0`'s host traits delegate to these through `From`
//! conversions ([`v0_1`](super::v0_1)). The rest of the host names these types through
//! [`latest`](super::latest) only.

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
    world: "osler:plugin/plugin@0.2.0",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use osler::plugin::types::{Caller, Error, Event, Request, Response};

/// The semver of this API version.
pub const VERSION: semver::Version = semver::Version::new(0, 2, 0);

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre, Linker};

use super::caps;
use super::instance;
use super::latest;
use super::sandbox::Sandbox;

/// Add the host interfaces of this version to `linker`, each with its capability's view.
pub fn link(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    use osler::plugin as p;
    p::types::add_to_linker::<_, caps::Types>(linker, Sandbox::types_view)?;
    p::log::add_to_linker::<_, caps::Log>(linker, Sandbox::log_view)?;
    p::clock::add_to_linker::<_, caps::Clock>(linker, Sandbox::clock_view)?;
    p::config::add_to_linker::<_, caps::Config>(linker, Sandbox::config_view)?;
    p::audit::add_to_linker::<_, caps::Audit>(linker, Sandbox::audit_view)?;
    p::context::add_to_linker::<_, caps::Context>(linker, Sandbox::context_view)?;
    p::patients_read::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    p::patients_write::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    p::patients_deidentified::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    p::patients_match::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    p::patient_data::add_to_linker::<_, caps::PatientData>(linker, Sandbox::patient_data_view)?;
    p::kv::add_to_linker::<_, caps::Kv>(linker, Sandbox::kv_view)?;
    p::events::add_to_linker::<_, caps::Events>(linker, Sandbox::events_view)?;
    p::directory::add_to_linker::<_, caps::Directory>(linker, Sandbox::directory_view)?;
    p::outbound_http::add_to_linker::<_, caps::Outbound>(linker, Sandbox::outbound_view)?;
    Ok(())
}

use exports::osler::plugin::{chart, event_handler, handler};

/// A linked 0.2 component's exports.
pub struct Exports {
    pre: InstancePre<Sandbox>,
    handler: handler::GuestIndices,
    events: Option<event_handler::GuestIndices>,
    chart: Option<chart::GuestIndices>,
}

impl instance::Exports for Exports {
    fn new(pre: InstancePre<Sandbox>) -> Result<Self, String> {
        let handler =
            handler::GuestIndices::new(&pre).map_err(|e| format!("not an Osler plugin: {e:#}"))?;
        Ok(Exports {
            handler,
            events: event_handler::GuestIndices::new(&pre).ok(),
            chart: chart::GuestIndices::new(&pre).ok(),
            pre,
        })
    }

    fn instance_pre(&self) -> &InstancePre<Sandbox> {
        &self.pre
    }

    async fn handle(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        request: latest::Request,
    ) -> wasmtime::Result<latest::Response> {
        let guest = self.handler.load(&mut *store, instance)?;
        guest.call_handle(&mut *store, &request).await
    }

    async fn on_event(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        event: latest::Event,
    ) -> wasmtime::Result<Option<Result<(), latest::Error>>> {
        let Some(indices) = &self.events else {
            return Ok(None);
        };
        let guest = indices.load(&mut *store, instance)?;
        Ok(Some(guest.call_on_event(&mut *store, &event).await?))
    }

    async fn render_panel(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        panel: &str,
        patient: &str,
    ) -> wasmtime::Result<Option<Result<String, latest::Error>>> {
        let Some(indices) = &self.chart else {
            return Ok(None);
        };
        let guest = indices.load(&mut *store, instance)?;
        Ok(Some(
            guest.call_render_panel(&mut *store, panel, patient).await?,
        ))
    }
}
