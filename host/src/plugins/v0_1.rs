//! `osler:plugin@0.1.0`: the bindings of the first API version, frozen (`wit/v0.1.0`).
//!
//! Nothing is implemented here twice. The host interfaces are implemented once, for the
//! current version, on each capability's view (`plugins::caps`); this version's `Host` traits
//! delegate to them, converting the arguments up and the results down with `From`. Its
//! exports are reached through [`Exports`], which converts the current version's request,
//! event and response types at the sandbox's edge, so the rest of the host never sees this
//! version.
//!
//! What a 0.1 plugin gets differs from 0.2 only where 0.1 cannot say more: `events.publish`
//! and a `kv` batch return no event id; a delivered `event` carries no id; an event is now
//! delivered at least once (durably) rather than at most once.

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "osler:plugin/plugin@0.1.0",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use osler::plugin::types::{Caller, Error, Event, Request, Response};

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre, Linker};

use super::caps::{self, *};
use super::sandbox::Sandbox;
use super::v0_2::osler::plugin as now;
use super::{instance, latest};
use osler::plugin as then;

/// The semver of this API version.
pub const VERSION: semver::Version = semver::Version::new(0, 1, 0);

/// Add the host interfaces of this version to `linker`, each with its capability's view.
pub fn link(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    then::types::add_to_linker::<_, caps::Types>(linker, Sandbox::types_view)?;
    then::log::add_to_linker::<_, caps::Log>(linker, Sandbox::log_view)?;
    then::clock::add_to_linker::<_, caps::Clock>(linker, Sandbox::clock_view)?;
    then::config::add_to_linker::<_, caps::Config>(linker, Sandbox::config_view)?;
    then::audit::add_to_linker::<_, caps::Audit>(linker, Sandbox::audit_view)?;
    then::patients_read::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    then::patients_write::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    then::patients_deidentified::add_to_linker::<_, caps::Patients>(
        linker,
        Sandbox::patients_view,
    )?;
    then::patients_match::add_to_linker::<_, caps::Patients>(linker, Sandbox::patients_view)?;
    then::kv::add_to_linker::<_, caps::Kv>(linker, Sandbox::kv_view)?;
    then::events::add_to_linker::<_, caps::Events>(linker, Sandbox::events_view)?;
    then::directory::add_to_linker::<_, caps::Directory>(linker, Sandbox::directory_view)?;
    then::outbound_http::add_to_linker::<_, caps::Outbound>(linker, Sandbox::outbound_view)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Types: 0.1 ⇄ current

/// `From` between two records whose fields have the same names (and convertible types).
macro_rules! record {
    ($from:ty => $to:ty { $($field:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(x: $from) -> Self {
                Self { $($field: x.$field.into()),* }
            }
        }
    };
}

/// `From` between two variants whose cases have the same names, each with a payload.
macro_rules! variant {
    ($from:ty => $to:ty { $($case:ident),* $(,)? }) => {
        impl From<$from> for $to {
            fn from(x: $from) -> Self {
                type F = $from;
                type T = $to;
                match x {
                    $(F::$case(v) => T::$case(v.into())),*
                }
            }
        }
    };
}

variant!(latest::Error => Error {
    Denied, NotFound, Invalid, Conflict, Unavailable, TooLarge, Internal
});
variant!(Error => latest::Error {
    Denied, NotFound, Invalid, Conflict, Unavailable, TooLarge, Internal
});
record!(latest::Caller => Caller {
    user, display_name, roles, permissions, site, site_name, csrf_token
});
record!(latest::Request => Request { method, path, query, headers, body, caller });
record!(Response => latest::Response { status, headers, body });

impl From<latest::Event> for Event {
    /// 0.1 events carry no id.
    fn from(e: latest::Event) -> Self {
        Event {
            topic: e.topic,
            payload: e.payload,
            site: e.site,
            source: e.source,
        }
    }
}

impl From<then::log::Level> for now::log::Level {
    fn from(l: then::log::Level) -> Self {
        use now::log::Level as N;
        use then::log::Level as T;
        match l {
            T::Trace => N::Trace,
            T::Debug => N::Debug,
            T::Info => N::Info,
            T::Warn => N::Warn,
            T::Error => N::Error,
        }
    }
}

record!(now::clock::Instant => then::clock::Instant {
    epoch_millis, timezone, utc_offset_minutes, local
});
variant!(now::config::Value => then::config::Value { Text, Integer, Boolean, Number });
record!(then::patients_read::SearchQuery => now::patients_read::SearchQuery {
    name, birthdate, identifier, count, cursor
});
record!(now::patients_read::SearchPage => then::patients_read::SearchPage { patients, next });
record!(now::patients_deidentified::Page => then::patients_deidentified::Page {
    patients, next
});
record!(then::kv::Entry => now::kv::Entry { key, value });
record!(now::kv::Entry => then::kv::Entry { key, value });
record!(then::kv::Expectation => now::kv::Expectation { key, value });
variant!(then::kv::Op => now::kv::Op { Put, Delete, Expect });
impl From<now::kv::Page> for then::kv::Page {
    fn from(p: now::kv::Page) -> Self {
        then::kv::Page {
            entries: p.entries.into_iter().map(Into::into).collect(),
            next: p.next,
        }
    }
}
record!(now::directory::Person => then::directory::Person { user, display_name, roles });
record!(then::outbound_http::Outgoing => now::outbound_http::Outgoing {
    method, url, headers, body, timeout_ms
});
record!(now::outbound_http::Incoming => then::outbound_http::Incoming {
    status, headers, body
});

/// A current result as 0.1's.
fn down<T, U: From<T>>(r: Result<T, latest::Error>) -> Result<U, Error> {
    r.map(Into::into).map_err(Into::into)
}

type R<T> = wasmtime::Result<Result<T, Error>>;

// ---------------------------------------------------------------------------------------------
// Host interfaces: each delegates to the current version's implementation.

impl then::log::Host for LogView<'_> {
    async fn log(&mut self, level: then::log::Level, message: String) -> wasmtime::Result<()> {
        now::log::Host::log(self, level.into(), message).await
    }
}

impl then::clock::Host for ClockView<'_> {
    async fn now(&mut self) -> wasmtime::Result<then::clock::Instant> {
        Ok(now::clock::Host::now(self).await?.into())
    }
}

impl then::config::Host for ConfigView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<then::config::Value>> {
        Ok(now::config::Host::get(self, key).await?.map(Into::into))
    }

    async fn all(&mut self) -> wasmtime::Result<Vec<(String, then::config::Value)>> {
        Ok(now::config::Host::all(self)
            .await?
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect())
    }
}

impl then::audit::Host for AuditView<'_> {
    async fn record(
        &mut self,
        action: String,
        patient: Option<String>,
        detail: Option<String>,
    ) -> R<()> {
        Ok(down(
            now::audit::Host::record(self, action, patient, detail).await?,
        ))
    }
}

impl then::patients_read::Host for PatientsView<'_> {
    async fn get(&mut self, id: String) -> R<String> {
        Ok(down(now::patients_read::Host::get(self, id).await?))
    }

    async fn search(
        &mut self,
        q: then::patients_read::SearchQuery,
    ) -> R<then::patients_read::SearchPage> {
        Ok(down(
            now::patients_read::Host::search(self, q.into()).await?,
        ))
    }
}

impl then::patients_write::Host for PatientsView<'_> {
    async fn create(&mut self, patient: String) -> R<String> {
        Ok(down(
            now::patients_write::Host::create(self, patient).await?,
        ))
    }

    async fn update(&mut self, id: String, patient: String, expected_version: u64) -> R<String> {
        let r = now::patients_write::Host::update(self, id, patient, expected_version).await?;
        Ok(down(r))
    }
}

impl then::patients_deidentified::Host for PatientsView<'_> {
    async fn list(
        &mut self,
        cursor: Option<String>,
        count: u32,
    ) -> R<then::patients_deidentified::Page> {
        let r = now::patients_deidentified::Host::list(self, cursor, count).await?;
        Ok(down(r))
    }

    async fn get(&mut self, pseudonym: String) -> R<String> {
        Ok(down(
            now::patients_deidentified::Host::get(self, pseudonym).await?,
        ))
    }
}

impl then::patients_match::Host for PatientsView<'_> {
    async fn find_by_health_card(
        &mut self,
        number: String,
        version_code: String,
        birth_date: String,
    ) -> R<Option<String>> {
        let r =
            now::patients_match::Host::find_by_health_card(self, number, version_code, birth_date)
                .await?;
        Ok(down(r))
    }
}

impl then::kv::Host for KvView<'_> {
    async fn get(&mut self, key: String) -> R<Option<Vec<u8>>> {
        Ok(down(now::kv::Host::get(self, key).await?))
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> R<()> {
        Ok(down(now::kv::Host::put(self, key, value).await?))
    }

    async fn delete(&mut self, key: String) -> R<()> {
        Ok(down(now::kv::Host::delete(self, key).await?))
    }

    async fn scan(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> R<then::kv::Page> {
        Ok(down(
            now::kv::Host::scan(self, prefix, start_after, limit).await?,
        ))
    }

    async fn batch(&mut self, ops: Vec<then::kv::Op>) -> R<()> {
        let ops = ops.into_iter().map(Into::into).collect();
        let r = now::kv::Host::batch(self, ops).await?;
        Ok(down(r.map(|_ids| ())))
    }
}

impl then::events::Host for EventsView<'_> {
    async fn publish(&mut self, topic: String, payload: String) -> R<()> {
        let r = now::events::Host::publish(self, topic, payload).await?;
        Ok(down(r.map(|_id| ())))
    }
}

impl then::directory::Host for DirectoryView<'_> {
    async fn staff(&mut self) -> R<Vec<then::directory::Person>> {
        let r = now::directory::Host::staff(self).await?;
        Ok(down(r.map(|people| {
            people
                .into_iter()
                .map(then::directory::Person::from)
                .collect::<Vec<_>>()
        })))
    }

    async fn lookup(&mut self, user: String) -> R<then::directory::Person> {
        Ok(down(now::directory::Host::lookup(self, user).await?))
    }
}

impl then::outbound_http::Host for OutboundView<'_> {
    async fn send(
        &mut self,
        request: then::outbound_http::Outgoing,
    ) -> R<then::outbound_http::Incoming> {
        Ok(down(
            now::outbound_http::Host::send(self, request.into()).await?,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Exports

use exports::osler::plugin::{event_handler, handler};

/// A linked 0.1 component's exports.
pub struct Exports {
    pre: InstancePre<Sandbox>,
    handler: handler::GuestIndices,
    events: Option<event_handler::GuestIndices>,
}

impl instance::Exports for Exports {
    fn new(pre: InstancePre<Sandbox>) -> Result<Self, String> {
        let handler =
            handler::GuestIndices::new(&pre).map_err(|e| format!("not an Osler plugin: {e:#}"))?;
        Ok(Exports {
            handler,
            events: event_handler::GuestIndices::new(&pre).ok(),
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
        let request: Request = request.into();
        Ok(guest.call_handle(&mut *store, &request).await?.into())
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
        let event: Event = event.into();
        let r = guest.call_on_event(&mut *store, &event).await?;
        Ok(Some(r.map_err(Into::into)))
    }

    async fn render_panel(
        &self,
        _store: &mut Store<Sandbox>,
        _instance: &Instance,
        _panel: &str,
        _patient: &str,
    ) -> wasmtime::Result<Option<Result<String, latest::Error>>> {
        // Chart panels arrived in 0.2.
        Ok(None)
    }
}
