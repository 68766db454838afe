//! The one wasmtime [`Engine`] of the process, its epoch ticker, the limits every sandbox gets,
//! and the on-disk cache of compiled components.
//!
//! Compiled code is cached under `<cache>/<component sha256>-<engine hash>.cwasm`, written
//! only by this host (atomically: a temporary file, then a rename). A cache entry from another
//! wasmtime version or configuration has a different engine hash and is simply not found.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A running guest yields to the async runtime at each tick, so
/// no plugin holds a worker thread longer than this.
pub const TICK: Duration = Duration::from_millis(10);

/// The memory a finished sandbox keeps resident for the next request on its slot.
pub const KEEP_RESIDENT: usize = 4 << 20;

/// How often (in fuel) a research run yields to the async runtime.
pub const FUEL_YIELD: u64 = 1_000_000;

/// Limits of one sandbox (one request to one plugin). `[plugins]` in `osler.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory of one plugin instance, in MiB.
    pub memory_mib: u64,
    /// Wall-clock time one request to a plugin may take, in milliseconds.
    pub timeout_ms: u64,
    /// Wall-clock time one chart panel or banner flag may take, in milliseconds: a late one
    /// shows "unavailable" and the rest of the page does not wait for it.
    pub panel_timeout_ms: u64,
    /// Largest response body a plugin may return, in MiB.
    pub response_mib: u64,
    /// Largest value crossing the boundary in one host call (kv value, outbound body), in KiB.
    pub payload_kib: u64,
    /// Plugin instances that may run at once across the host (each nested plugin-to-plugin
    /// call counts); a request beyond it waits for the deadline, then gets 503.
    pub concurrent: u32,
    /// Instances one plugin may run at once (its share of `concurrent`), so that one busy or
    /// slow plugin leaves the others room; 0 means an eighth of `concurrent` (at least 4).
    pub per_plugin: u32,
    /// Linear memory all running plugin instances together may hold, in MiB: a growth past it
    /// fails (that request ends with the memory-limit error), whatever `concurrent` allows.
    pub memory_budget_mib: u64,
    /// Finished sandboxes that keep their memory resident (up to 4 MiB each) for the next
    /// request, which then takes no page faults; beyond them a finished sandbox's memory goes
    /// back to the system. 0: as many as a quarter of `[memory] budget_mib` holds.
    pub warm_slots: u32,
    /// Core module instances one component may create (a Python component built with
    /// componentize-py needs about 38).
    pub core_instances: u32,
    /// Storage a plugin may keep (`kv` and `patient-data` together), in MiB and in keys. A
    /// write past either is refused whole with `too-large`.
    pub storage_mib: u64,
    pub storage_keys: u64,
    /// Per-plugin storage quotas that differ from the defaults: `[plugins.quota.<id>]` with
    /// `mib` and `keys`.
    pub quota: std::collections::BTreeMap<String, Quota>,
    /// Audit entries a plugin may write (`audit.record`) in one call, and per minute.
    pub audit_per_call: u32,
    pub audit_per_minute: u32,
    /// Events a plugin may publish per minute.
    pub events_per_minute: u32,
    /// Inbound requests (`/inbound/{site}/{plugin}/…`, capability `inbound`) one source
    /// address may make per minute, to all plugins together; beyond it, 429.
    pub inbound_per_minute: u32,
    /// The first retry of a failed event delivery waits this long, in milliseconds; each
    /// further retry waits twice as long, at most ten minutes.
    pub event_retry_ms: u64,
    /// Delivery attempts before a failing event is parked for an administrator (20: with the
    /// default first retry of a second, a subscriber whose far end is down keeps its events
    /// for about an hour and three quarters before anyone has to act).
    pub event_attempts: u32,
    /// Where compiled components are cached; `<data dir>/cache` when unset.
    pub cache_dir: Option<PathBuf>,
    /// Name plugins' compiled functions for Linux `perf` (wasmtime writes
    /// `/tmp/perf-<pid>.map`), so that a profile of the server shows where a plugin spends its
    /// time, by the function names its build kept. For profiling only: every plugin's code is
    /// then read into memory instead of mapped from the cache.
    pub perf_map: bool,
    /// Accept unsigned (development) packages. Every such install is marked and audited.
    pub allow_unsigned: bool,
    /// The research sandbox: defaults and maxima of the budgets an administrator sets per
    /// research plugin (`[plugins.research]`).
    pub research: ResearchLimits,
}

/// Budgets of research runs. An administrator sets a fuel budget and a memory limit per
/// research plugin, up to these maxima; a plugin without its own uses the defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResearchLimits {
    /// Fuel of one run when the administrator set none (about one WebAssembly instruction
    /// per unit).
    pub fuel: u64,
    /// The most fuel an administrator may give one run.
    pub max_fuel: u64,
    /// Linear memory of one run when the administrator set none, in MiB.
    pub memory_mib: u64,
    /// The most memory an administrator may give one run, in MiB.
    pub max_memory_mib: u64,
    /// Wall-clock time one run may take, in milliseconds, whatever fuel it has left (a
    /// backstop: fuel is what ends a run deterministically).
    pub timeout_ms: u64,
    /// Research runs that may run at once across the host; a run beyond it waits (up to
    /// `timeout_ms`), then is refused as busy.
    pub concurrent: u32,
}

impl Default for ResearchLimits {
    fn default() -> Self {
        Self {
            fuel: 1_000_000_000,
            max_fuel: 20_000_000_000,
            memory_mib: 32,
            max_memory_mib: 256,
            timeout_ms: 60_000,
            concurrent: 2,
        }
    }
}

/// A plugin's storage quota.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub mib: u64,
    pub keys: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: 64,
            timeout_ms: 5_000,
            panel_timeout_ms: 1_500,
            response_mib: 16,
            payload_kib: 1024,
            concurrent: 256,
            per_plugin: 0,
            memory_budget_mib: 2048,
            warm_slots: 0,
            core_instances: 64,
            storage_mib: 256,
            storage_keys: 1_000_000,
            quota: Default::default(),
            audit_per_call: 64,
            audit_per_minute: 3_000,
            events_per_minute: 600,
            inbound_per_minute: 600,
            event_retry_ms: 1_000,
            event_attempts: 20,
            cache_dir: None,
            perf_map: false,
            allow_unsigned: false,
            research: ResearchLimits::default(),
        }
    }
}

impl Limits {
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib.clamp(1, 4096) as usize) << 20
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
    /// A panel's deadline: its own, and never past a request's.
    pub fn panel_timeout(&self) -> Duration {
        Duration::from_millis(self.panel_timeout_ms.clamp(1, self.timeout_ms.max(1)))
    }
    pub fn response_bytes(&self) -> usize {
        (self.response_mib.max(1) as usize) << 20
    }
    pub fn payload_bytes(&self) -> usize {
        (self.payload_kib.max(1) as usize) << 10
    }
    /// The instances one plugin may run at once.
    pub fn plugin_slots(&self) -> u32 {
        match self.per_plugin {
            0 => (self.concurrent / 8).max(4),
            n => n,
        }
        .min(self.concurrent.max(1))
    }
    pub fn memory_budget_bytes(&self) -> usize {
        (self.memory_budget_mib.max(1) as usize) << 20
    }
    /// The storage quota of plugin `id`: (bytes, keys).
    pub fn quota_of(&self, id: &str) -> (u64, u64) {
        match self.quota.get(id) {
            Some(q) => (q.mib << 20, q.keys),
            None => (self.storage_mib << 20, self.storage_keys),
        }
    }
}

/// The engine and the compiled-code cache.
pub struct Runtime {
    pub engine: Engine,
    cache_dir: PathBuf,
    engine_hash: String,
    perf_map: bool,
    stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// The engine for sandboxes with `limits` (the plugin service keeps the one copy of them).
    pub fn new(limits: &Limits, data_dir: &Path) -> anyhow::Result<Runtime> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.epoch_interruption(true);
        cfg.max_wasm_stack(1 << 20);
        cfg.async_stack_size(4 << 20);
        cfg.parallel_compilation(true);
        if limits.perf_map {
            cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let slots = limits.concurrent.max(8);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots);
        let core = limits.core_instances.clamp(8, 1000);
        pool.total_core_instances((slots * 16).max(core));
        pool.total_memories(slots * 2);
        pool.total_tables(slots * 4);
        pool.total_stacks(slots);
        pool.max_memories_per_component(4);
        pool.max_tables_per_component(8);
        pool.max_core_instances_per_component(core);
        pool.max_memory_size(limits.memory_bytes());
        pool.table_elements(20_000);
        // Reset a finished sandbox's memory by zeroing only the pages it dirtied (found with
        // Linux's PAGEMAP_SCAN where the kernel has it) instead of returning them to the kernel
        // with madvise: the next request on that slot takes no page faults and the other cores
        // no TLB shootdowns. Either way, nothing of one request is visible to the next.
        pool.linear_memory_keep_resident(KEEP_RESIDENT);
        pool.table_keep_resident(64 << 10);
        // Only so many finished sandboxes stay warm (`warm_slots`, from the memory budget):
        // with the default of 100, a burst of requests left up to 400 MiB resident for good.
        let warm = match limits.warm_slots {
            0 => crate::memory::Budget::default().warm_slots(),
            n => n,
        };
        pool.max_unused_warm_slots(warm.clamp(1, slots));
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(|e| anyhow::anyhow!("wasm engine: {e}"))?;

        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_hash = format!("{:016x}", h.finish());

        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("osler-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })?;
        }
        let cache_dir = limits
            .cache_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("cache"));
        Ok(Runtime {
            engine,
            cache_dir,
            engine_hash,
            perf_map: limits.perf_map,
            stop,
        })
    }

    /// The research sandbox's engine: its own, configured for fuel and determinism, so that the
    /// clinical engine above stays as fast as it is. Fuel metering (`consume_fuel`) ends a run
    /// at its budget and counts what it used; NaNs are canonicalised and relaxed SIMD is
    /// deterministic, so a float computation gives the same bits on every machine; no threads
    /// or shared memory (wasmtime is built without them). Instances are allocated on demand (runs are few; the pool is the
    /// clinical engine's). Fuel, not the epoch, interrupts a run, and it yields to the async
    /// runtime every [`FUEL_YIELD`] units so that it never holds a worker thread.
    pub fn research(limits: &Limits, data_dir: &Path) -> anyhow::Result<Runtime> {
        let mut cfg = Config::new();
        cfg.wasm_component_model(true);
        cfg.consume_fuel(true);
        cfg.cranelift_nan_canonicalization(true);
        cfg.relaxed_simd_deterministic(true);
        // No threads or shared memory: this wasmtime is built without the `threads` feature.
        cfg.max_wasm_stack(1 << 20);
        cfg.async_stack_size(4 << 20);
        cfg.parallel_compilation(true);
        cfg.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        let engine = Engine::new(&cfg).map_err(|e| anyhow::anyhow!("wasm engine: {e}"))?;
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_hash = format!("{:016x}", h.finish());
        let cache_dir = limits
            .cache_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("cache"));
        Ok(Runtime {
            engine,
            cache_dir,
            engine_hash,
            perf_map: false,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The compiled component for `bytes` (whose sha256 is `sha256`), from the cache when
    /// present, else compiled now and cached. Returns whether it was compiled.
    pub fn component(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<(Component, bool)> {
        let path = self
            .cache_dir
            .join(format!("{sha256}-{}.cwasm", self.engine_hash));
        if path.exists() {
            // Files in the cache directory are written only by `Runtime::component` below, from
            // code wasmtime itself compiled with this engine's configuration (the engine hash
            // is in the name); the directory belongs to the host.
            let cached = if self.perf_map {
                // Code loaded from bytes sits in anonymous memory, where `perf` looks it up in
                // the perf map wasmtime writes; code mapped from the cache file it would not find.
                std::fs::read(&path)
                    .map_err(wasmtime::Error::from)
                    // SAFETY: the bytes of a cache file, as above.
                    .and_then(|b| unsafe { Component::deserialize(&self.engine, b) })
            } else {
                // SAFETY: a cache file, as above.
                unsafe { Component::deserialize_file(&self.engine, &path) }
            };
            match cached {
                Ok(c) => return Ok((c, false)),
                Err(e) => {
                    tracing::warn!(error = %e, "compiled component cache entry unusable; recompiling");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| anyhow::anyhow!("not a valid WebAssembly component: {e:#}"))?;
        if let Ok(serialized) = component.serialize()
            && let Err(e) = write_atomic(&self.cache_dir, &path, &serialized)
        {
            tracing::warn!(error = %e, "cannot write the compiled component cache");
        }
        Ok((component, true))
    }
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
