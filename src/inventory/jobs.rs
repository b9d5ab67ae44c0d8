//! Exclusion of the batch jobs (backfill, enrich_pending): a session-level lock on an object
//! only the extension can name. Its tag is (this database, the `ip_inventory_jobs` table,
//! a hash of the job's name); no SQL function takes locks of that kind on a table's OID, so
//! unlike an advisory key no other role can take it to block a job. The lock survives the
//! job's commits and is released by the job, by an error in it, or when its session ends.

use std::cell::RefCell;
use std::ffi::c_void;

use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;

use crate::errors;

thread_local! {
    /// The job locks this session holds: released when a transaction aborts (an error or a
    /// cancel in a job's batch ends the job) and at the job's end.
    static HELD: RefCell<Vec<pg_sys::LOCKTAG>> = const { RefCell::new(Vec::new()) };
    static CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT) {
        let held = HELD.with(|h| {
            h.try_borrow_mut()
                .map(|mut h| std::mem::take(&mut *h))
                .unwrap_or_default()
        });
        for tag in held {
            release_all(&tag);
        }
    }
}

/// The lock tag of a job.
fn tag(fcinfo: pg_sys::FunctionCallInfo, job: &str) -> Result<pg_sys::LOCKTAG, ErrorReport> {
    let table = jobs_table(fcinfo)?;
    Ok(pg_sys::LOCKTAG {
        // SAFETY: a plain read of the backend's database.
        locktag_field1: u32::from(unsafe { pg_sys::MyDatabaseId }),
        locktag_field2: u32::from(table),
        locktag_field3: ip_inventory_core::inventory::jobs::lock_key(job),
        locktag_field4: 0,
        locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
        locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
    })
}

/// The `ip_inventory_jobs` table of the called function's schema.
fn jobs_table(fcinfo: pg_sys::FunctionCallInfo) -> Result<pg_sys::Oid, ErrorReport> {
    // SAFETY: catalog lookups by OID and name; InvalidOid when missing.
    let table = unsafe {
        let namespace = pg_sys::get_func_namespace((*(*fcinfo).flinfo).fn_oid);
        pg_sys::get_relname_relid(c"ip_inventory_jobs".as_ptr(), namespace)
    };
    if table == pg_sys::Oid::INVALID {
        return Err(errors::report(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            "table ip_inventory_jobs is missing".to_owned(),
        ));
    }
    Ok(table)
}

/// `_ip_inventory_job_start(job)`: takes the job's lock, or raises 55006 naming the
/// session that holds it. A hold this session kept from an earlier run is released first.
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_job_start")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_job_start(job: &str, fcinfo: pg_sys::FunctionCallInfo) -> Result<(), ErrorReport> {
    let tag = tag(fcinfo, job)?;
    release_all(&tag);
    // SAFETY: a session lock on a tag we built; dontWait, so it never blocks.
    let got = unsafe { pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as i32, true, true) };
    if got == pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL {
        return Err(errors::job_running(job, holder(fcinfo, job)?));
    }
    if !CALLBACK.replace(true) {
        // SAFETY: registered once per backend; the callback only releases our own locks.
        unsafe { pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut()) };
    }
    HELD.with_borrow_mut(|h| h.push(tag));
    Ok(())
}

/// `_ip_inventory_job_release(job)`: releases every hold this session has on the job's lock.
#[pg_extern(volatile, parallel_unsafe, strict, name = "_ip_inventory_job_release")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_job_release(
    job: &str,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<(), ErrorReport> {
    let tag = tag(fcinfo, job)?;
    release_all(&tag);
    HELD.with_borrow_mut(|h| h.retain(|t| !same(t, &tag)));
    Ok(())
}

fn same(a: &pg_sys::LOCKTAG, b: &pg_sys::LOCKTAG) -> bool {
    (a.locktag_field1, a.locktag_field2, a.locktag_field3)
        == (b.locktag_field1, b.locktag_field2, b.locktag_field3)
}

/// Whether this session holds the job's lock. PostgreSQL 17 added `orstronger` to
/// LockHeldByMe; false keeps 15's meaning (this mode exactly).
fn held_by_me(tag: &pg_sys::LOCKTAG) -> bool {
    let mode = pg_sys::ExclusiveLock as i32;
    // SAFETY: reads this backend's own lock table only.
    #[cfg(not(feature = "pg18"))]
    let held = unsafe { pg_sys::LockHeldByMe(tag, mode) };
    #[cfg(feature = "pg18")]
    let held = unsafe { pg_sys::LockHeldByMe(tag, mode, false) };
    held
}

fn release_all(tag: &pg_sys::LOCKTAG) {
    // Releases only holds of this session; held_by_me() is false once none is left.
    while held_by_me(tag) {
        if !unsafe { pg_sys::LockRelease(tag, pg_sys::ExclusiveLock as i32, true) } {
            break;
        }
    }
}

/// `_ip_inventory_job_holder(job) → int`: the process running the job, or NULL.
#[pg_extern(stable, parallel_safe, strict, name = "_ip_inventory_job_holder")]
#[search_path(pg_catalog, pg_temp)]
fn ip_inventory_job_holder(
    job: &str,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Result<Option<i32>, ErrorReport> {
    holder(fcinfo, job)
}

fn holder(fcinfo: pg_sys::FunctionCallInfo, job: &str) -> Result<Option<i32>, ErrorReport> {
    let tag = tag(fcinfo, job)?;
    Spi::connect(|client| {
        let t = client.select(
            "SELECT l.pid FROM pg_catalog.pg_locks AS l
             WHERE l.locktype OPERATOR(pg_catalog.=) 'object' AND l.granted
               AND l.database OPERATOR(pg_catalog.=) $1 AND l.classid OPERATOR(pg_catalog.=) $2
               AND l.objid OPERATOR(pg_catalog.=) $3 AND l.objsubid OPERATOR(pg_catalog.=) 0
             LIMIT 1",
            Some(1),
            &[
                pg_sys::Oid::from(tag.locktag_field1).into(),
                pg_sys::Oid::from(tag.locktag_field2).into(),
                pg_sys::Oid::from(tag.locktag_field3).into(),
            ],
        )?;
        if t.is_empty() {
            Ok(None)
        } else {
            t.first().get::<i32>(1)
        }
    })
    .map_err(errors::spi)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@._ip_inventory_job_start(text) IS 'Takes a batch job''s lock or raises naming its holder (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_job_release(text) IS 'Releases this session''s holds on a batch job''s lock (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_job_holder(text) IS 'The process running a batch job, or NULL (internal: ip_inventory_progress).';
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_start(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_job_release(text) FROM PUBLIC;
"#,
    name = "job_locks",
    requires = [
        ip_inventory_job_start,
        ip_inventory_job_release,
        ip_inventory_job_holder
    ]
);
