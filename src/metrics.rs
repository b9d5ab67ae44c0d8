//! The counters behind `ip_inventory_stats` (their layout: `ip_inventory_core::metrics`).
//!
//! Lookups count into per-backend integers, not shared atomics: a shared add per row would
//! make every backend fight over the same cache lines. The backend adds its counts to the
//! shared counters at the end of every transaction (committed or not), after every
//! [`DRAIN_AFTER`] counts (so a long statement shows progress), and before it reads them.
//! Inventory writes are counted apart and only when their transaction commits: a
//! rolled-back insert recorded nothing. Network requests are counted by the worker threads
//! straight into shared memory (one add per request is nothing next to a round trip).
//!
//! Without `shared_preload_libraries` there is no shared memory: nothing is counted and
//! the stats functions raise 55000.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::time::Instant;

use ip_inventory_core::metrics::{
    DbMetric, InventoryMetric, MaxmindMetric, Metric, Pending, LATENCY_SAMPLE_EVERY,
};
use ip_inventory_core::mmdb::{DbErrorKind, DbFamily};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;

use crate::datum::PG_EPOCH_OFFSET_US;
use crate::errors;
use crate::shmem;

/// A backend adds its pending counts to the shared ones at least this often.
const DRAIN_AFTER: u64 = 4096;

thread_local! {
    /// Work done (lookups, errors, reloads): shared whatever the transaction's fate.
    static DONE: RefCell<Pending> = const { RefCell::new(Pending::new()) };
    /// Inventory writes: shared when the transaction commits, forgotten when it aborts.
    static WRITTEN: RefCell<Pending> = const { RefCell::new(Pending::new()) };
    /// Lookups seen by this backend per database family, never reset: picks the ones to
    /// time. One clock per family: with one for all, a function that looks up City then
    /// ASN (enrich_ip) would time only one of them (the sampling period is even).
    static LOOKUP_CLOCK: [Cell<u64>; DbFamily::ALL.len()] =
        const { [const { Cell::new(0) }; DbFamily::ALL.len()] };
}

/// Called from `_PG_init` after `shmem::init`: counts are shared at transaction end.
pub fn init() {
    if shmem::enabled() {
        // SAFETY: registered once, in the postmaster while preloading; forked backends
        // inherit the registration.
        unsafe { pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    let Some(shared) = shmem::counters() else {
        return;
    };
    let committed = match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => true,
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => false,
        _ => return,
    };
    // try_borrow: never panic here; nothing holds these across a Postgres call, though.
    DONE.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            add_cache_counts(&mut p);
            p.drain_into(shared);
        }
    });
    WRITTEN.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            if committed {
                p.drain_into(shared);
            } else {
                p.clear();
            }
        }
    });
}

/// Adds the City record cache's new hits and misses to `p`: the cache counts them itself
/// (plain integers beside the entries), so a lookup pays nothing more for them.
fn add_cache_counts(p: &mut Pending) {
    if let Some((hits, misses)) = crate::mmdb::readers::take_cache_counts() {
        for (m, n) in [
            (MaxmindMetric::CityCacheHits, hits),
            (MaxmindMetric::CityCacheMisses, misses),
        ] {
            if n > 0 {
                p.add(Metric::maxmind(m), n);
            }
        }
    }
}

/// Counts `n` of `m` for this backend.
#[inline]
pub fn count_n(m: Metric, n: u64) {
    let Some(shared) = shmem::counters() else {
        return;
    };
    DONE.with_borrow_mut(|p| {
        if p.add(m, n) >= DRAIN_AFTER {
            p.drain_into(shared);
        }
    });
}

#[inline]
pub fn count(m: Metric) {
    count_n(m, 1);
}

/// Counts a failed lookup in `db` by why it failed.
pub fn count_db_error(db: DbFamily, kind: DbErrorKind) {
    count(Metric::db_error(db, kind));
}

/// One lookup in a database: counted when started; `finish` counts a miss and, for one
/// lookup in [`LATENCY_SAMPLE_EVERY`], the time taken. A lookup that fails is counted by
/// its error instead (the probe is dropped unfinished).
pub struct Probe {
    db: DbFamily,
    started: Option<Instant>,
}

impl Probe {
    #[inline]
    pub fn start(db: DbFamily) -> Probe {
        count(Metric::db(db, DbMetric::Lookups));
        let seen = LOOKUP_CLOCK.with(|clocks| {
            let clock = &clocks[db as usize];
            let seen = clock.get();
            clock.set(seen.wrapping_add(1));
            seen
        });
        let timed = seen.is_multiple_of(LATENCY_SAMPLE_EVERY) && shmem::enabled();
        Probe {
            db,
            started: timed.then(Instant::now),
        }
    }

    /// `found`: the database has a record for the address.
    #[inline]
    pub fn finish(self, found: bool) {
        if !found {
            count(Metric::db(self.db, DbMetric::NotFound));
        }
        if let Some(started) = self.started {
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            count(Metric::db(self.db, DbMetric::LookupSamples));
            count_n(Metric::db(self.db, DbMetric::LookupNsSum), ns);
            count(Metric::lookup_bucket(self.db, ns));
        }
    }
}

/// Adds this backend's pending work counts to the shared counters now.
fn drain_done(shared: &ip_inventory_core::metrics::Counters) {
    DONE.with_borrow_mut(|p| {
        add_cache_counts(p);
        p.drain_into(shared)
    });
}

fn timestamptz(unix_us: i64) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(unix_us - PG_EPOCH_OFFSET_US).ok()
}

/// `ip_inventory_stats_counters()`: every counter, and the generation, cluster-wide (this
/// session's own counts included). `ip_inventory_stats` adds the database ages and the
/// GreyNoise quota.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_restricted, name = "_ip_inventory_stats_counters")]
fn ip_inventory_stats_counters() -> Result<
    TableIterator<
        'static,
        (
            name!(source, String),
            name!(metric, String),
            name!(error_kind, Option<String>),
            name!(kind, String),
            name!(value, i64),
            name!(stats_reset, Option<TimestampWithTimeZone>),
        ),
    >,
    ErrorReport,
> {
    let shared = shmem::counters().ok_or_else(|| errors::preload_required(&errors::STATS_NEED))?;
    drain_done(shared);
    let reset = shared.reset_at().and_then(timestamptz);
    let value = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut rows: Vec<_> = Metric::all()
        .map(|m| {
            let name = m.name();
            (
                name.source.to_owned(),
                name.metric.to_owned(),
                name.error_kind.map(str::to_owned),
                "counter".to_owned(),
                value(shared.get(m)),
                reset,
            )
        })
        .collect();
    rows.push((
        "maxmind".to_owned(),
        "generation".to_owned(),
        None,
        "gauge".to_owned(),
        shmem::generation().map_or(0, value),
        None,
    ));
    Ok(TableIterator::new(rows))
}

/// `_ip_inventory_latency_histograms()`: the latency histograms behind
/// `ip_inventory_latency`, cluster-wide (this session's pending counts included): MaxMind
/// lookups per database family (timed lookups only: one in [`LATENCY_SAMPLE_EVERY`]) and
/// network requests per source. `le`: upper bounds in seconds (`+Inf` left out: it is
/// `count`); `buckets`: cumulative counts, one per bound.
#[allow(clippy::type_complexity)]
#[pg_extern(
    volatile,
    parallel_restricted,
    name = "_ip_inventory_latency_histograms"
)]
fn ip_inventory_latency_histograms() -> Result<
    TableIterator<
        'static,
        (
            name!(source, String),
            name!(metric, String),
            name!(le, Vec<f64>),
            name!(buckets, Vec<i64>),
            name!(sum_seconds, f64),
            name!(count, i64),
        ),
    >,
    ErrorReport,
> {
    let shared = shmem::counters().ok_or_else(|| errors::preload_required(&errors::STATS_NEED))?;
    drain_done(shared);
    let value = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let rows: Vec<_> = shared
        .histograms()
        .into_iter()
        .map(|h| {
            (
                h.source.to_owned(),
                h.metric.to_owned(),
                h.bounds_ns.iter().map(|&ns| ns as f64 / 1e9).collect(),
                h.cumulative.iter().map(|&c| value(c)).collect(),
                h.sum_ns as f64 / 1e9,
                value(h.count),
            )
        })
        .collect();
    Ok(TableIterator::new(rows))
}

/// `ip_inventory_stats_reset()`: zeroes every counter cluster-wide (gauges stay) and
/// records the time in `stats_reset`. Superusers, and roles granted EXECUTE.
#[pg_extern(volatile, parallel_unsafe)]
fn ip_inventory_stats_reset() -> Result<Option<TimestampWithTimeZone>, ErrorReport> {
    let shared = shmem::counters().ok_or_else(|| errors::preload_required(&errors::STATS_NEED))?;
    // This session's pending counts belong before the reset.
    drain_done(shared);
    let now = unsafe { pg_sys::GetCurrentTimestamp() } + PG_EPOCH_OFFSET_US;
    shared.reset(now);
    Ok(timestamptz(now))
}

thread_local! {
    /// (function oid, ip_inventory oid) of the last `ip_inventory_count_recorded` call.
    static INVENTORY_OID: Cell<(pg_sys::Oid, pg_sys::Oid)> =
        const { Cell::new((pg_sys::Oid::INVALID, pg_sys::Oid::INVALID)) };
}

/// The `ip_inventory` table of the schema the called function lives in.
fn inventory_table(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Oid {
    // SAFETY: fcinfo and its flinfo are this call's.
    let fn_oid = unsafe { (*(*fcinfo).flinfo).fn_oid };
    let (cached_fn, table) = INVENTORY_OID.get();
    if cached_fn == fn_oid {
        return table;
    }
    // SAFETY: catalog lookups by oid and name; both return InvalidOid when missing.
    let table = unsafe {
        let namespace = pg_sys::get_func_namespace(fn_oid);
        pg_sys::get_relname_relid(c"ip_inventory".as_ptr(), namespace)
    };
    INVENTORY_OID.set((fn_oid, table));
    table
}

/// `_ip_inventory_count_recorded(observations, new_addresses, maxmind_enriched) → bigint`:
/// counts inventory writes of the current transaction (shared if it commits) and returns
/// `observations`. Called by the recording statement and enrich_pending. Callers must be
/// able to write `ip_inventory` (INSERT or UPDATE): a role that cannot write the inventory
/// cannot claim to.
#[pg_extern(
    volatile,
    parallel_unsafe,
    strict,
    name = "_ip_inventory_count_recorded"
)]
fn ip_inventory_count_recorded(
    observations: i64,
    new_addresses: i64,
    maxmind_enriched: i64,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<i64, ErrorReport> {
    let table = inventory_table(fcinfo);
    let allowed = table != pg_sys::Oid::INVALID
        // SAFETY: an ACL check of an existing relation for the current user.
        && unsafe {
            pg_sys::pg_class_aclcheck(
                table,
                pg_sys::GetUserId(),
                (pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE) as pg_sys::AclMode,
            )
        } == pg_sys::AclResult::ACLCHECK_OK;
    if !allowed {
        return Err(errors::cannot_count_writes());
    }
    if shmem::counters().is_none() {
        return Ok(observations);
    }
    WRITTEN.with_borrow_mut(|p| {
        for (m, n) in [
            (InventoryMetric::Observations, observations),
            (InventoryMetric::NewAddresses, new_addresses),
            (InventoryMetric::MaxmindEnriched, maxmind_enriched),
        ] {
            if let Ok(n) = u64::try_from(n) {
                p.add(Metric::inventory(m), n);
            }
        }
    });
    Ok(observations)
}
