//! Running a plugin: a fresh `Store` per call from the plugin's cached `InstancePre`, with
//! its limits and deadline, on the async runtime (the guest yields at every epoch tick), and
//! the links from one plugin's imports to another plugin's exports.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Instance, Linker, Val};

use super::engine::Runtime;
use super::inspect::{PluginImport, Shape};
use super::sandbox::{Call, Sandbox};
use super::{Plugins, caps, latest, v0_1};

/// A plugin ready to instantiate, whatever API version it was built against. The exports of
/// every version are reached through this and [`Work`]/[`Done`], so the rest of the host never
/// sees a version number.
#[derive(Clone)]
pub enum Pre {
    V0_1(v0_1::PluginPre<Sandbox>),
}

impl Pre {
    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<Sandbox>) -> wasmtime::Result<Instance> {
        match self {
            Pre::V0_1(pre) => pre.instance_pre().instantiate_async(store).await,
        }
    }
}

/// What to do in a sandbox.
pub enum Work {
    Handle(latest::Request),
    Event(latest::Event),
    /// Call `func` of the exported interface `export` (another plugin's import).
    Export {
        export: String,
        func: String,
        params: Vec<Val>,
    },
}

pub enum Done {
    Response(latest::Response),
    Event(Result<(), latest::Error>),
    Export(Val),
}

/// Why a call to a plugin did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the plugin did not answer within {0} ms")]
    Timeout(u128),
    #[error("the plugin stopped: {0}")]
    Trap(String),
    #[error("the plugin reached its memory limit ({0} MiB)")]
    Memory(u64),
    #[error("the plugin's response is {0} bytes; the limit is {1}")]
    TooLarge(usize, usize),
    #[error("too many plugin calls are running; try again")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

/// Link everything a plugin may import, and compile-check the whole component against it.
pub fn prepare(
    runtime: &Runtime,
    component: &wasmtime::component::Component,
    shape: &Shape,
) -> Result<Pre, String> {
    let mut linker: Linker<Sandbox> = Linker::new(&runtime.engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
    caps::link_v0_1(&mut linker).map_err(|e| e.to_string())?;
    for import in &shape.imports {
        link_import(&mut linker, import).map_err(|e| e.to_string())?;
    }
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| format!("cannot link the component: {e:#}"))?;
    let pre = v0_1::PluginPre::new(pre).map_err(|e| format!("not an Osler plugin: {e:#}"))?;
    Ok(Pre::V0_1(pre))
}

/// Each function of an imported plugin interface calls, at run time, the plugin that exports
/// it at the caller's site — or answers `unavailable` when there is none.
fn link_import(linker: &mut Linker<Sandbox>, import: &PluginImport) -> wasmtime::Result<()> {
    let mut inst = linker.instance(&import.name)?;
    for func in &import.funcs {
        let import = Arc::new((import.base.clone(), import.version.clone(), func.clone()));
        inst.func_new_async(func, move |store, _ty, params, results| {
            let import = import.clone();
            Box::new(async move {
                let (host, call) = {
                    let d = store.data();
                    (d.host().clone(), d.call.clone())
                };
                let (base, version, func) = &*import;
                let out = host
                    .call_provider(&call, base, version, func, params.to_vec())
                    .await;
                results[0] = match out {
                    Ok(v) => v,
                    Err(e) => error_val(&e),
                };
                Ok(())
            })
        })?;
    }
    Ok(())
}

/// `err(e)` of `result<_, osler:plugin/types.error>` as a dynamic value.
pub fn error_val(e: &latest::Error) -> Val {
    use latest::Error::*;
    let (case, msg) = match e {
        Denied(m) => ("denied", m),
        NotFound(m) => ("not-found", m),
        Invalid(m) => ("invalid", m),
        Conflict(m) => ("conflict", m),
        Unavailable(m) => ("unavailable", m),
        TooLarge(m) => ("too-large", m),
        Internal(m) => ("internal", m),
    };
    Val::Result(Err(Some(Box::new(Val::Variant(
        case.into(),
        Some(Box::new(Val::String(msg.clone()))),
    )))))
}

/// Run `work` in a fresh sandbox for `call`. Never blocks a worker thread for longer than an
/// epoch tick; ends with [`RunError::Timeout`] at the deadline.
pub async fn run(host: &Plugins, call: Arc<Call>, pre: &Pre, work: Work) -> Result<Done, RunError> {
    let runtime = host.runtime().map_err(RunError::Failed)?;
    let limits = host.runtime_limits();
    let deadline = limits.timeout();
    let _permit = tokio::time::timeout(deadline, host.permit())
        .await
        .map_err(|_| RunError::Busy)?;

    let mut store = Store::new(&runtime.engine, Sandbox::new(host.clone(), call));
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);

    let fut = async {
        match pre {
            Pre::V0_1(pre) => {
                let instance = pre.instance_pre().instantiate_async(&mut store).await?;
                match work {
                    Work::Handle(req) => {
                        let b = v0_1::Plugin::new(&mut store, &instance)?;
                        let resp = b
                            .osler_plugin_handler()
                            .call_handle(&mut store, &req)
                            .await?;
                        Ok(Done::Response(resp))
                    }
                    Work::Event(ev) => {
                        let b = v0_1::Plugin::new(&mut store, &instance)?;
                        let r = b
                            .osler_plugin_event_handler()
                            .call_on_event(&mut store, &ev)
                            .await?;
                        Ok(Done::Event(r))
                    }
                    Work::Export {
                        export,
                        func,
                        params,
                    } => {
                        let iface = instance
                            .get_export_index(&mut store, None, &export)
                            .ok_or_else(|| wasmtime::format_err!("no export {export}"))?;
                        let f = instance
                            .get_export_index(&mut store, Some(&iface), &func)
                            .and_then(|i| instance.get_func(&mut store, i))
                            .ok_or_else(|| {
                                wasmtime::format_err!("no function {func} in {export}")
                            })?;
                        let mut results = vec![Val::Bool(false)];
                        f.call_async(&mut store, &params, &mut results).await?;
                        Ok(Done::Export(results.pop().unwrap_or(Val::Bool(false))))
                    }
                }
            }
        }
    };
    let out: wasmtime::Result<Done> = match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => return Err(RunError::Timeout(deadline.as_millis())),
    };
    // The answer may carry what the plugin read: the reads' audit entries reach the disk first.
    store
        .data()
        .reads
        .durable()
        .await
        .map_err(|e| RunError::Failed(format!("the audit trail cannot be written: {e}")))?;
    let done = out.map_err(|e| classify(&e, limits.memory_mib))?;
    if let Done::Response(r) = &done
        && r.body.len() > limits.response_bytes()
    {
        return Err(RunError::TooLarge(r.body.len(), limits.response_bytes()));
    }
    Ok(done)
}

fn classify(e: &wasmtime::Error, memory_mib: u64) -> RunError {
    let text = format!("{e:#}");
    if text.contains("forcing trap when growing memory") {
        return RunError::Memory(memory_mib);
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => {
            RunError::Trap("stack overflow (unbounded recursion?)".into())
        }
        Some(wasmtime::Trap::MemoryOutOfBounds) => RunError::Trap(
            "out-of-bounds memory access (in Rust, usually a stack overflow from unbounded \
             recursion)"
                .into(),
        ),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            RunError::Trap("the plugin panicked or aborted".into())
        }
        Some(wasmtime::Trap::Interrupt) => RunError::Timeout(0),
        Some(t) => RunError::Trap(t.to_string()),
        None if text.contains("pooling") || text.contains("maximum concurrent") => RunError::Busy,
        None => RunError::Trap(text),
    }
}
