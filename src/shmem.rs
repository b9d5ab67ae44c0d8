//! Cluster-wide state in Postgres shared memory (only with
//! `shared_preload_libraries = 'ip_inventory'`):
//! - the reader generation, bumped by `maxmind_reload()`; each backend compares it with the
//!   generation its readers were opened under and reopens when it moved;
//! - the GreyNoise daily quota (UTC day and calls made, in one word) and the time before
//!   which GreyNoise must not be called (its last 429's Retry-After);
//! - the operational counters behind `ip_inventory_stats` (see `metrics`);
//! - the refreshes' claims on addresses (see `claims`);
//! - the refresh queue of addresses a live consumer found stale (see `queue`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use ip_inventory_core::metrics::Counters;
use ip_inventory_core::sources::claims::ClaimTable;
use ip_inventory_core::sources::queue::RefreshQueue;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic, PgLwLock};

use crate::errors;

static GENERATION: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"ip_inventory_generation") };
static GREYNOISE_QUOTA: PgAtomic<AtomicU64> =
    unsafe { PgAtomic::new(c"ip_inventory_greynoise_quota") };
static GREYNOISE_PAUSED_UNTIL: PgAtomic<AtomicI64> =
    unsafe { PgAtomic::new(c"ip_inventory_greynoise_paused_until") };
static COUNTERS: PgAtomic<SharedCounters> = unsafe { PgAtomic::new(c"ip_inventory_counters") };
static CLAIMS: PgLwLock<SharedClaims> = unsafe { PgLwLock::new(c"ip_inventory_claims") };
static QUEUE: PgLwLock<SharedQueue> = unsafe { PgLwLock::new(c"ip_inventory_refresh_queue") };

/// Set in the postmaster when the library is preloaded; inherited by every backend.
static ENABLED: AtomicBool = AtomicBool::new(false);

#[repr(transparent)]
struct SharedCounters(Counters);

#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub struct SharedClaims(pub ClaimTable);

// SAFETY: plain integers, no pointers.
unsafe impl PGRXSharedMemory for SharedClaims {}

impl std::ops::Deref for SharedClaims {
    type Target = ClaimTable;
    fn deref(&self) -> &ClaimTable {
        &self.0
    }
}

impl std::ops::DerefMut for SharedClaims {
    fn deref_mut(&mut self) -> &mut ClaimTable {
        &mut self.0
    }
}

#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub struct SharedQueue(pub RefreshQueue);

// SAFETY: plain integers, no pointers.
unsafe impl PGRXSharedMemory for SharedQueue {}

impl std::ops::Deref for SharedQueue {
    type Target = RefreshQueue;
    fn deref(&self) -> &RefreshQueue {
        &self.0
    }
}

impl std::ops::DerefMut for SharedQueue {
    fn deref_mut(&mut self) -> &mut RefreshQueue {
        &mut self.0
    }
}

// SAFETY: atomics only, no pointers.
unsafe impl PGRXSharedMemory for SharedCounters {}

/// Called from `_PG_init`; allocates shared memory only while preloading.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(GENERATION = AtomicU64::new(1));
        pg_shmem_init!(GREYNOISE_QUOTA = AtomicU64::new(0));
        pg_shmem_init!(GREYNOISE_PAUSED_UNTIL = AtomicI64::new(0));
        pg_shmem_init!(COUNTERS = SharedCounters(Counters::new()));
        pg_shmem_init!(CLAIMS);
        pg_shmem_init!(QUEUE);
        ENABLED.store(true, Ordering::Relaxed);
    }
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The current generation; `None` without preload.
#[inline]
pub fn generation() -> Option<u64> {
    enabled().then(|| GENERATION.get().load(Ordering::Acquire))
}

/// Errors out (55000) when the library was not preloaded.
pub fn require(needs: &errors::NeedsSharedMemory) -> Result<(), pgrx::pg_sys::panic::ErrorReport> {
    if enabled() {
        Ok(())
    } else {
        Err(errors::preload_required(needs))
    }
}

/// Publishes a new generation; backends reopen their readers at their next lookup.
pub fn bump_generation() -> u64 {
    GENERATION.get().fetch_add(1, Ordering::AcqRel) + 1
}

/// The GreyNoise quota word and pause time, in shared memory (`'static`: worker threads
/// use them directly, without any Postgres call). `None` without preload.
pub fn greynoise_state() -> Option<(&'static AtomicU64, &'static AtomicI64)> {
    enabled().then(|| (GREYNOISE_QUOTA.get(), GREYNOISE_PAUSED_UNTIL.get()))
}

/// The cluster-wide counters (`'static`: worker threads count into them directly). `None`
/// without preload.
#[inline]
pub fn counters() -> Option<&'static Counters> {
    enabled().then(|| &COUNTERS.get().0)
}

/// The refreshes' claims on addresses (`claims`). `None` without preload.
pub fn claims() -> Option<&'static PgLwLock<SharedClaims>> {
    enabled().then_some(&CLAIMS)
}

/// The refresh queue (`queue`). `None` without preload.
pub fn queue() -> Option<&'static PgLwLock<SharedQueue>> {
    enabled().then_some(&QUEUE)
}
