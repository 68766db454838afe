//! `context` (API 0.2): who the current call serves, and the chain of plugins it came
//! through. No capability: a plugin learns only what the host already acts on.

use super::Sandbox;
use crate::access::Principal;
use crate::plugins::sandbox::Call;
use crate::plugins::v0_2::osler::plugin::context;

/// What `context` sees: the call.
pub struct ContextView<'a> {
    call: &'a Call,
}

impl Sandbox {
    pub(crate) fn context_view(&mut self) -> ContextView<'_> {
        ContextView { call: &self.call }
    }
}

impl context::Host for ContextView<'_> {
    async fn current(&mut self) -> wasmtime::Result<context::Principal> {
        let call = self.call;
        Ok(match (&call.person, call.ctx.principal) {
            (Some(person), Principal::Person) => {
                context::Principal::Person(person.caller_for(call.id()))
            }
            _ => context::Principal::Unattended(context::Unattended {
                site: call.site.clone(),
                site_name: call.site_name.clone(),
                what: call.ctx.source.clone().unwrap_or_default(),
            }),
        })
    }

    async fn via(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.call.via())
    }
}
