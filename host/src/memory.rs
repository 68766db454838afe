//! The process's memory: how the allocator is set up, so that what the server holds stays in
//! proportion to what it uses, and goes back to the system when the load stops.
//!
//! Measured with the soak benchmark (`cargo bench -p osler-host --bench soak`): under load the
//! heap is mostly the database's page cache (bounded by `[storage] cache_mib`; sled counts
//! it by the size of the pages on disk, so what it holds in memory is a few times more) and
//! short-lived request buffers. glibc's allocator gives each thread that allocates its own
//! arena, up to eight per core; freed memory stays in those arenas, scattered, and the resident
//! size ratchets up with the number of threads that ever allocated (Tokio's blocking pool grows
//! to hundreds of threads under load) rather than with what is in use. So the server:
//! - limits glibc to two arenas ([`limit_arenas`]), which keeps freed memory reusable by the
//!   next request instead of stranded in an idle thread's arena;
//! - hands free memory back to the system every few seconds ([`start_trimming`]), so that an
//!   idle server's resident size falls back to what it actually holds.

use std::time::Duration;

/// How often free heap memory is handed back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// At most two allocator arenas (glibc; elsewhere nothing to do). Call before any thread is
/// started.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called once, at start-up.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// A thread that returns free heap pages to the system every [`TRIM_EVERY`] (glibc's
/// `malloc_trim`, which releases free pages inside the heap as well as at its end).
pub fn start_trimming() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("osler-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: malloc_trim is thread-safe and only releases free memory.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the memory trimmer");
        }
    }
}
