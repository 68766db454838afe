//! The process's memory: a budget shared out among what holds most of it, and how the
//! allocator is set up, so that what the server holds stays in proportion to what it uses and
//! goes back to the system when the load stops.
//!
//! `[memory] budget_mib` (128 by default) is what the server's resident size should stay
//! within. Measured with the hot-path and soak benchmarks, what holds memory is:
//! - the database ([`Budget::storage`]): with fjall, its block cache (an eighth of the budget,
//!   counted as held) and each written tree's in-memory table (a sixteenth; only the few trees
//!   being written hold one of any size); with sled, its page cache, which sled counts by the
//!   size of its pages on disk (in memory they take two to three times that), an eighth of the
//!   budget as sled counts it. `[storage] cache_mib` sets the cache instead;
//! - finished plugin sandboxes kept warm for the next request (up to
//!   [`KEEP_RESIDENT`](crate::plugins::engine::KEEP_RESIDENT) each): a quarter of the budget
//!   ([`Budget::warm_slots`]), unless `[plugins] warm_slots` says otherwise;
//! - patient records as plugins receive them, kept for the next read of the same record: a
//!   thirty-second of the budget ([`Budget::patient_json_bytes`]);
//! - the rest: compiled plugin code, request buffers, the allocator's free memory, threads.
//!
//! The allocator is jemalloc (the `jemalloc` feature, on by default). Side by side with glibc's
//! malloc in the hot-path benchmark (the same binary with each preloaded, the same clinic, one
//! after the other), it took creates from 6.7–7.3 to 8.9–9.8 thousand a second at 64 clients,
//! a name search's p50 from 1.47 to 1.04–1.06 ms and a trivial plugin route from 9–13 to 16–17
//! thousand a second, at the same resident size (111 against 105–112 MiB): glibc's
//! `_int_malloc` alone was 15–20 % of the server's CPU. jemalloc keeps freed memory per arena
//! and returns it to the system as it ages (ten seconds); the server also
//! - asks it every [`TRIM_EVERY`] to return what has aged even when nothing is being allocated
//!   (an idle server's memory would otherwise wait for the next allocation), and every
//!   [`CHECK_EVERY`] while the resident size is above the budget's high-water mark (seven
//!   eighths of it, [`Budget::high_water`]) to return all its free memory at once
//!   ([`start_trimming`]). Under 64 clients of creates, freed memory waiting for jemalloc's
//!   decay grew by 20–30 MiB a second; purged only once the budget itself was passed, and once
//!   a second, it kept the server over its budget after the load (119–141 MiB against 128).
//!   The mark leaves room below the budget for what accumulates between two checks. (Peaks
//!   above the budget that remain are memory in use, which the warning's figures show.)
//!
//! Built without the feature, glibc's malloc gives each thread that allocates its own arena, up
//! to eight per core; freed memory stays in those arenas, scattered, and the resident size
//! ratchets up with the number of threads that ever allocated (Tokio's blocking pool grows to
//! hundreds of threads under load) rather than with what is in use. So the server then limits
//! glibc to two arenas ([`limit_arenas`]) and trims its heap on the same schedule.

use std::time::{Duration, Instant};

/// `[memory] budget_mib` unless set.
pub const DEFAULT_BUDGET_MIB: u64 = 128;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How often free heap memory is handed back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// How often the resident size is compared with the budget's high-water mark (and, when
/// above it, trimmed). Reading `/proc/self/statm` costs a few microseconds.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// The memory budget and its shares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    mib: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_BUDGET_MIB)
    }
}

impl Budget {
    /// A budget of `mib` MiB (at least 32).
    pub fn new(mib: u64) -> Budget {
        Budget { mib: mib.max(32) }
    }

    pub fn bytes(&self) -> u64 {
        self.mib << 20
    }

    /// Seven eighths of the budget: above it, the allocator's free memory goes back to the
    /// system at once, leaving an eighth for what accumulates between two checks.
    pub fn high_water(&self) -> u64 {
        self.bytes() - self.bytes() / 8
    }

    /// The database's share: its cache, an eighth of the budget, and (fjall) the in-memory
    /// tables of written data, a quarter together and each at most a sixteenth.
    pub fn storage(&self) -> crate::storage::StorageMemory {
        crate::storage::StorageMemory {
            cache_bytes: (self.mib / 8) << 20,
            memtable_bytes: (self.mib / 16) << 20,
            tables_bytes: (self.mib / 4) << 20,
        }
    }

    /// Patient records as plugins receive them, kept for the next read of the same record: a
    /// thirty-second of the budget.
    pub fn patient_json_bytes(&self) -> u64 {
        (self.mib / 32) << 20
    }

    /// Finished sandboxes kept warm: as many as a quarter of the budget holds at
    /// [`KEEP_RESIDENT`](crate::plugins::engine::KEEP_RESIDENT) each.
    pub fn warm_slots(&self) -> u32 {
        let each = (crate::plugins::engine::KEEP_RESIDENT >> 20) as u64;
        (self.mib / 4 / each).max(1) as u32
    }
}

/// At most two allocator arenas when the allocator is glibc's (elsewhere nothing to do). Call
/// before any thread is started.
pub fn limit_arenas() {
    #[cfg(all(not(feature = "jemalloc"), target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called once, at start-up.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hand free heap memory back to the system: all of it (`all`), or (jemalloc) what has been
/// free for longer than its decay time. False if the allocator refused.
fn release_free_memory(all: bool) -> bool {
    #[cfg(feature = "jemalloc")]
    {
        // `MALLCTL_ARENAS_ALL` (4096): every arena.
        let name = if all {
            c"arena.4096.purge"
        } else {
            c"arena.4096.decay"
        };
        // SAFETY: a void mallctl (no old or new value); jemalloc's controls are thread-safe.
        let failed = unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        if failed != 0 {
            tracing::debug!(code = failed, "jemalloc did not release free memory");
        }
        failed == 0
    }
    #[cfg(all(not(feature = "jemalloc"), target_os = "linux", target_env = "gnu"))]
    {
        let _ = all;
        // SAFETY: malloc_trim is thread-safe and only releases free memory (inside the heap as
        // well as at its end).
        unsafe {
            libc::malloc_trim(0);
        }
        true
    }
    #[cfg(not(any(feature = "jemalloc", all(target_os = "linux", target_env = "gnu"))))]
    {
        let _ = all;
        false
    }
}

/// A thread that returns free heap memory to the system every [`TRIM_EVERY`], and all of it
/// every [`CHECK_EVERY`] while the resident size is above the budget's high-water mark.
/// Staying over the budget after that is logged, at most every ten minutes, with what to
/// change and what the database holds (`engine`: its in-memory tables and cache, when the
/// engine can say).
pub fn start_trimming(
    budget: Budget,
    engine: impl Fn() -> Option<crate::storage::EngineMemory> + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("osler-trim".into())
        .spawn(move || {
            let mut trimmed = Instant::now();
            let mut warned: Option<Instant> = None;
            loop {
                std::thread::sleep(CHECK_EVERY);
                let over = resident_bytes().is_some_and(|r| r > budget.high_water());
                if !over && trimmed.elapsed() < TRIM_EVERY {
                    continue;
                }
                release_free_memory(over);
                trimmed = Instant::now();
                if let Some(r) = resident_bytes().filter(|r| *r > budget.bytes())
                    && warned.is_none_or(|w| w.elapsed() > Duration::from_secs(600))
                {
                    warned = Some(Instant::now());
                    let held = engine();
                    let heap = heap_bytes();
                    tracing::warn!(
                        resident_mib = r >> 20,
                        budget_mib = budget.bytes() >> 20,
                        database_tables_mib = held.map(|m| m.tables >> 20),
                        database_cache_mib = held.map(|m| m.cache >> 20),
                        heap_in_use_mib = heap.map(|h| h.in_use >> 20),
                        heap_resident_mib = heap.map(|h| h.resident >> 20),
                        "the server holds more memory than its budget; raise [memory] \
                         budget_mib, or lower [storage] cache_mib or [plugins] warm_slots \
                         if they are set"
                    );
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the memory trimmer");
    }
}

/// What the allocator holds: the bytes of the allocations in use, and the pages it keeps
/// resident for them (with its own bookkeeping and the free memory not yet returned). The
/// rest of the resident size is outside the heap: code, thread stacks, plugin sandboxes.
#[derive(Clone, Copy, Debug)]
pub struct Heap {
    pub in_use: u64,
    pub resident: u64,
}

/// The allocator's figures, when it can give them (jemalloc).
pub fn heap_bytes() -> Option<Heap> {
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The statistics are a snapshot taken when the epoch advances.
        epoch::advance().ok()?;
        Some(Heap {
            in_use: stats::allocated::read().ok()? as u64,
            resident: stats::resident::read().ok()? as u64,
        })
    }
    #[cfg(not(feature = "jemalloc"))]
    None
}

/// The process's resident size (Linux: `/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn freed_memory_goes_back_to_the_system() {
        // 128 MiB written and freed: the allocator accepts both requests (a misspelt
        // control would leave the server's memory to grow unnoticed), and the resident size
        // falls back once everything is returned.
        let chunks: Vec<Vec<u8>> = (0..128).map(|i| vec![i as u8; 1 << 20]).collect();
        let held = resident_bytes().expect("resident size");
        drop(chunks);
        assert!(release_free_memory(false), "the allocator refused to decay");
        assert!(release_free_memory(true), "the allocator refused to purge");
        let after = resident_bytes().expect("resident size");
        assert!(
            after + (64 << 20) < held,
            "128 MiB freed and released, yet the resident size went from {} to {} MiB",
            held >> 20,
            after >> 20
        );
    }

    #[cfg(feature = "jemalloc")]
    #[test]
    fn the_allocator_says_what_it_holds() {
        // The over-budget warning names the heap in use and resident, so that an administrator
        // can tell the database and the heap from the rest; without jemalloc's statistics
        // compiled in, those figures would be missing. (Other tests allocate and free at the
        // same time: 256 MiB is held here, 64 MiB must show.)
        let before = heap_bytes().expect("jemalloc's statistics");
        let held = vec![1u8; 256 << 20];
        let during = heap_bytes().expect("jemalloc's statistics");
        assert!(
            during.in_use >= before.in_use + (64 << 20),
            "256 MiB allocated, yet the heap in use went from {} to {} MiB",
            before.in_use >> 20,
            during.in_use >> 20
        );
        assert!(
            during.resident >= 64 << 20,
            "resident {} MiB",
            during.resident >> 20
        );
        drop(held);
    }

    #[test]
    fn the_budget_sizes_the_cache_and_the_warm_sandboxes_unless_they_are_set() {
        let mut config = Config::default();
        assert_eq!(config.storage_memory().cache_bytes, 16 << 20);
        assert_eq!(config.storage_memory().memtable_bytes, 8 << 20);
        assert_eq!(config.plugin_limits().warm_slots, 8);

        config.memory.budget_mib = 512;
        assert_eq!(config.storage_memory().cache_bytes, 64 << 20);
        assert_eq!(config.storage_memory().memtable_bytes, 32 << 20);
        assert_eq!(config.plugin_limits().warm_slots, 32);

        config.storage.cache_mib = Some(200);
        config.plugins.warm_slots = 3;
        assert_eq!(config.storage_memory().cache_bytes, 200 << 20);
        assert_eq!(config.storage_memory().memtable_bytes, 32 << 20);
        assert_eq!(config.plugin_limits().warm_slots, 3);

        // A budget too small to run in is raised to the least that works.
        config.memory.budget_mib = 1;
        assert_eq!(config.budget(), Budget::new(32));
    }
}
