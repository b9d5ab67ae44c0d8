//! The refresh queue in shared memory (`ip_inventory_core::sources::queue`): `ip_verdict`
//! queues an address whose answer from a network source is missing or stale, and the next
//! scheduled `cascade_refresh` of that source asks about it before the other due rows.
//! Without shared_preload_libraries nothing is queued (the verdict says so: `queued` false).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ip_inventory_core::sources::queue::{bit, Pushed};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;

use crate::datum::{InetArg, PG_EPOCH_OFFSET_US};
use crate::{errors, shmem};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// This backend's database: each database has its own queue.
fn db() -> u32 {
    // SAFETY: a plain read of the backend's database OID, set at connection.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

fn bits(sources: Array<'_, &str>) -> Result<u8, ErrorReport> {
    sources
        .iter()
        .flatten()
        .try_fold(0u8, |acc, name| Ok(acc | bit(super::parse_source(name)?)))
}

/// `_ip_inventory_queue(ip, sources text[]) → boolean`: queues `ip` for the next refresh of
/// each source; false when it could not be (the queue is full near it, or not preloaded).
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_queue")]
fn ip_inventory_queue(ip: InetArg, sources: Array<'_, &str>) -> Result<bool, ErrorReport> {
    let wanted = bits(sources)?;
    Ok(match shmem::queue() {
        Some(queue) => queue.exclusive().push(db(), ip.addr, wanted, now()) != Pushed::Full,
        None => false,
    })
}

/// `_ip_inventory_queue_peek(source, lim) → text[]`: up to `lim` addresses queued for the
/// source, longest queued first, as `host()` writes them.
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_queue_peek")]
fn ip_inventory_queue_peek(source: &str, lim: i32) -> Result<Vec<String>, ErrorReport> {
    let source = bit(super::parse_source(source)?);
    let limit = usize::try_from(lim).unwrap_or(0);
    Ok(match shmem::queue() {
        Some(queue) if limit > 0 => queue
            .share()
            .peek(db(), source, limit, now())
            .into_iter()
            .map(|ip| ip.to_string())
            .collect(),
        _ => Vec::new(),
    })
}

/// `_ip_inventory_queue_done(source, ips text[])`: the refresh of the source took `ips`.
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_queue_done")]
fn ip_inventory_queue_done(source: &str, ips: Array<'_, &str>) -> Result<(), ErrorReport> {
    let source = bit(super::parse_source(source)?);
    if let Some(queue) = shmem::queue() {
        let list: Vec<IpAddr> = ips
            .iter()
            .flatten()
            .map(|t| {
                t.parse::<IpAddr>()
                    .map_err(|_| errors::invalid_address_text(t))
            })
            .collect::<Result<_, _>>()?;
        queue.exclusive().done(db(), source, &list, now());
    }
    Ok(())
}

/// `_ip_inventory_queue_entries()`: every queued address, the sources it waits for and when
/// it was queued (`ip_inventory_refresh_queue()`).
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, name = "_ip_inventory_queue_entries")]
fn ip_inventory_queue_entries() -> TableIterator<
    'static,
    (
        name!(ip_address, String),
        name!(sources, Vec<String>),
        name!(queued_at, Option<TimestampWithTimeZone>),
    ),
> {
    let entries = shmem::queue().map_or_else(Vec::new, |q| q.share().entries(db(), now()));
    TableIterator::new(entries.into_iter().map(|(ip, mask, at)| {
        let names = ip_inventory_core::sources::Source::ALL
            .iter()
            .filter(|s| mask & bit(**s) != 0)
            .map(|s| s.name().to_owned())
            .collect();
        let at = TimestampWithTimeZone::try_from(
            at.saturating_mul(1_000_000)
                .saturating_sub(PG_EPOCH_OFFSET_US),
        )
        .ok();
        (ip.to_string(), names, at)
    }))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@._ip_inventory_queue(inet, text[]) IS 'Queues an address for the next refresh of the given network sources (internal: ip_verdict).';
COMMENT ON FUNCTION @extschema@._ip_inventory_queue_peek(text, int) IS 'Addresses queued for a network source, longest queued first (internal: cascade_refresh).';
COMMENT ON FUNCTION @extschema@._ip_inventory_queue_done(text, text[]) IS 'Removes addresses a refresh took from the queue (internal: cascade_refresh).';
COMMENT ON FUNCTION @extschema@._ip_inventory_queue_entries() IS 'The refresh queue (internal: ip_inventory_refresh_queue).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue(inet, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue_peek(text, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue_done(text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_queue_entries() FROM PUBLIC;
"#,
    name = "refresh_queue",
    requires = [
        ip_inventory_queue,
        ip_inventory_queue_peek,
        ip_inventory_queue_done,
        ip_inventory_queue_entries
    ]
);
