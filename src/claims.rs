//! The refresh's claims on addresses, in shared memory (`ip_inventory_core::claims`): visible
//! to every backend at once, released at the refresh's end, by an error in its transaction,
//! or when its process is gone. Without shared_preload_libraries nothing is claimed and two
//! concurrent refreshes may ask about the same address.

use std::cell::Cell;
use std::ffi::c_void;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use ip_inventory_core::claims::{process_alive, Claimant};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;

use crate::{errors, shmem};

/// A claim lapses after this long even if its refresh still runs (then another refresh may
/// ask about the address again: wasted work, never a lost answer).
const LEASE_SECS: i64 = 3600;

thread_local! {
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn pid() -> i32 {
    // SAFETY: a plain read of this backend's pid.
    unsafe { pg_sys::MyProcPid }
}

#[pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        if let Some(table) = shmem::claims() {
            table.exclusive().release_all(pid());
        }
    }
}

fn source_code(source: &str) -> Result<u8, ErrorReport> {
    match source {
        "cymru" => Ok(1),
        "greynoise" => Ok(2),
        "rdns" => Ok(3),
        other => Err(errors::unknown_source(other)),
    }
}

fn addresses(ips: Array<'_, &str>) -> Result<Vec<IpAddr>, ErrorReport> {
    ips.iter()
        .flatten()
        .map(|t| {
            t.parse::<IpAddr>()
                .map_err(|_| errors::invalid_address_text(t))
        })
        .collect()
}

/// `_ip_inventory_claim(source, ips text[], lim) → text[]`: claims, in order, up to `lim` of
/// the addresses (as `host()` writes them) no other refresh holds.
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_claim")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_claim(
    source: &str,
    ips: Array<'_, &str>,
    lim: i32,
) -> Result<Vec<String>, ErrorReport> {
    let code = source_code(source)?;
    let wanted = addresses(ips)?;
    let limit = usize::try_from(lim).unwrap_or(0);
    let claimed = match shmem::claims() {
        Some(table) => {
            if !CALLBACK.replace(true) {
                // SAFETY: registered once per backend; it only releases this backend's claims.
                unsafe {
                    pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut())
                };
            }
            table.exclusive().claim(
                code,
                &wanted,
                limit,
                Claimant {
                    pid: pid(),
                    now: now(),
                    lease: LEASE_SECS,
                },
                &process_alive,
            )
        }
        None => wanted.into_iter().take(limit).collect(),
    };
    Ok(claimed.into_iter().map(|ip| ip.to_string()).collect())
}

/// `_ip_inventory_release(source, ips text[])`: releases this backend's claims on `ips`.
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_release")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_release(source: &str, ips: Array<'_, &str>) -> Result<(), ErrorReport> {
    let code = source_code(source)?;
    if let Some(table) = shmem::claims() {
        let list = addresses(ips)?;
        table.exclusive().release(code, &list, pid());
    }
    Ok(())
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@._ip_inventory_claim(text, text[], int) IS 'Claims addresses for a refresh of a network source (internal: cascade_refresh).';
COMMENT ON FUNCTION @extschema@._ip_inventory_release(text, text[]) IS 'Releases a refresh''s claims (internal: cascade_refresh).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_claim(text, text[], int) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_release(text, text[]) FROM PUBLIC;
"#,
    name = "claims",
    requires = [ip_inventory_claim, ip_inventory_release]
);
