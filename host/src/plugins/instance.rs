//! Running a plugin: a fresh `Store` per call from the plugin's cached `InstancePre`, with
//! its limits and deadline, on the async runtime (the guest yields at every epoch tick), and
//! the links from one plugin's imports to another plugin's exports.
//!
//! A call waits for a slot of its plugin's own (its share of the pool, so that one busy
//! plugin leaves room for the others), then for one of the pool, both within its deadline.
//! The linear memory of every running instance together is held to a budget
//! ([`MemoryBudget`]): a growth past it fails that request, not the host.
//!
//! Each API version implements [`Exports`] once (in its own module); [`Pre`] is the one place
//! that picks the version, so the rest of the host never sees a version number.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::component::{Instance, InstancePre, Linker, Val};
use wasmtime::{ResourceLimiter, Store, StoreLimits};

use super::engine::Runtime;
use super::inspect::{PluginImport, Shape};
use super::sandbox::{Call, Sandbox, trail_failure};
use super::{Plugins, latest, v0_1, v0_2};

/// The exports of one API version, over a linked component: each version implements this
/// once, converting to and from [`latest`]'s types.
pub trait Exports: Sized + Send + Sync {
    /// Find the exports in a linked component: `handler` is required, the others optional.
    fn new(pre: InstancePre<Sandbox>) -> Result<Self, String>;
    fn instance_pre(&self) -> &InstancePre<Sandbox>;
    fn handle(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        request: latest::Request,
    ) -> impl Future<Output = wasmtime::Result<latest::Response>> + Send;
    /// `None` when the component exports no event handler.
    fn on_event(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        event: latest::Event,
    ) -> impl Future<Output = wasmtime::Result<Option<Result<(), latest::Error>>>> + Send;
    /// `None` when the component exports no chart panels.
    fn render_panel(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        panel: &str,
        patient: &str,
    ) -> impl Future<Output = wasmtime::Result<Option<Result<String, latest::Error>>>> + Send;
}

/// A plugin ready to instantiate, whatever API version it was built against.
#[derive(Clone)]
pub enum Pre {
    V0_1(Arc<v0_1::Exports>),
    V0_2(Arc<v0_2::Exports>),
}

impl Pre {
    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<Sandbox>) -> wasmtime::Result<Instance> {
        match self {
            Pre::V0_1(e) => e.instance_pre().instantiate_async(store).await,
            Pre::V0_2(e) => e.instance_pre().instantiate_async(store).await,
        }
    }

    async fn work(
        &self,
        store: &mut Store<Sandbox>,
        instance: &Instance,
        work: Work,
    ) -> wasmtime::Result<Done> {
        macro_rules! each {
            ($e:ident) => {
                match work {
                    Work::Handle(req) => Ok(Done::Response($e.handle(store, instance, req).await?)),
                    Work::Event(ev) => Ok(Done::Event(
                        $e.on_event(store, instance, ev).await?.unwrap_or(Ok(())),
                    )),
                    Work::Panel { panel, patient } => Ok(Done::Panel(
                        $e.render_panel(store, instance, &panel, &patient)
                            .await?
                            .unwrap_or_else(|| {
                                Err(latest::Error::NotFound(
                                    "this plugin exports no chart panels".into(),
                                ))
                            }),
                    )),
                    Work::Export {
                        export,
                        func,
                        params,
                    } => call_export(store, instance, &export, &func, &params).await,
                }
            };
        }
        match self {
            Pre::V0_1(e) => each!(e),
            Pre::V0_2(e) => each!(e),
        }
    }
}

/// Call `func` of the exported interface `export` with dynamic values (any version).
async fn call_export(
    store: &mut Store<Sandbox>,
    instance: &Instance,
    export: &str,
    func: &str,
    params: &[Val],
) -> wasmtime::Result<Done> {
    let iface = instance
        .get_export_index(&mut *store, None, export)
        .ok_or_else(|| wasmtime::format_err!("no export {export}"))?;
    let f = instance
        .get_export_index(&mut *store, Some(&iface), func)
        .and_then(|i| instance.get_func(&mut *store, i))
        .ok_or_else(|| wasmtime::format_err!("no function {func} in {export}"))?;
    let mut results = vec![Val::Bool(false)];
    f.call_async(&mut *store, params, &mut results).await?;
    Ok(Done::Export(results.pop().unwrap_or(Val::Bool(false))))
}

/// What to do in a sandbox.
pub enum Work {
    Handle(latest::Request),
    Event(latest::Event),
    Panel {
        panel: String,
        patient: String,
    },
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
    Panel(Result<String, latest::Error>),
    Export(Val),
}

/// The linear memory all running plugin instances hold, against the configured budget.
pub struct MemoryBudget {
    used: AtomicUsize,
    max: usize,
}

impl MemoryBudget {
    pub fn new(max: usize) -> Self {
        MemoryBudget {
            used: AtomicUsize::new(0),
            max,
        }
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One store's limits: the per-instance ones, and its share of the memory budget (given
/// back when the store is dropped).
pub struct Limiter {
    limits: StoreLimits,
    budget: Arc<MemoryBudget>,
    held: usize,
}

impl Limiter {
    pub fn new(limits: StoreLimits, budget: Arc<MemoryBudget>) -> Self {
        Limiter {
            limits,
            budget,
            held: 0,
        }
    }
}

impl Limiter {
    /// The linear memory this store holds now (it only grows: its peak).
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.limits.memory_growing(current, desired, maximum)? {
            return Ok(false);
        }
        let more = desired.saturating_sub(current);
        if !self.budget.take(more) {
            wasmtime::bail!(
                "forcing trap when growing memory: the plugins' memory budget ({} MiB) is in use",
                self.budget.max >> 20
            );
        }
        self.held += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
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
    let v0_1 = shape.api == v0_1::VERSION;
    if v0_1 {
        v0_1::link(&mut linker).map_err(|e| e.to_string())?;
    } else {
        v0_2::link(&mut linker).map_err(|e| e.to_string())?;
    }
    for import in &shape.imports {
        link_import(&mut linker, import).map_err(|e| e.to_string())?;
    }
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| format!("cannot link the component: {e:#}"))?;
    Ok(if v0_1 {
        Pre::V0_1(Arc::new(v0_1::Exports::new(pre)?))
    } else {
        Pre::V0_2(Arc::new(v0_2::Exports::new(pre)?))
    })
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
                // What this call read goes on the trail before the provider runs.
                let (host, call, unsynced) = {
                    let d = store.data();
                    (d.host().clone(), d.call.clone(), d.reads_before_call())
                };
                let (base, version, func) = &*import;
                let out = match unsynced {
                    Ok(unsynced) => {
                        host.call_provider(&call, base, version, func, params.to_vec(), unsynced)
                            .await
                    }
                    Err(e) => Err(trail_failure(e)),
                };
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
    let started = tokio::time::Instant::now();
    // The plugin's own share first, so that a flood of one plugin waits in its own queue.
    let _own = tokio::time::timeout(deadline, host.plugin_permit(call.id()))
        .await
        .map_err(|_| RunError::Busy)?;
    let _permit = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), host.permit())
        .await
        .map_err(|_| RunError::Busy)?;
    let deadline = deadline.saturating_sub(started.elapsed());

    let mut store = Store::new(&runtime.engine, Sandbox::new(host.clone(), call));
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);

    let fut = async {
        let instance = pre.instantiate(&mut store).await?;
        pre.work(&mut store, &instance, work).await
    };
    let out: wasmtime::Result<Done> = match tokio::time::timeout(deadline, fut).await {
        Ok(r) => r,
        Err(_) => return Err(RunError::Timeout(limits.timeout().as_millis())),
    };
    // The answer may carry what the plugin read: the reads' audit entries reach the disk first.
    store
        .data()
        .reads_durable()
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
