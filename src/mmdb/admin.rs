//! Operating the MaxMind databases: `maxmind_reload()`, `maxmind_info()`, `maxmind_age()`,
//! `maxmind_verify()`.

use std::path::Path;

use ip_inventory_core::metrics::{MaxmindMetric, Metric};
use ip_inventory_core::mmdb::store::{Found, Wait};
use ip_inventory_core::mmdb::{Database, DbError, DbKind, DbSlot};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;

use super::readers;
use crate::{datum, errors, metrics, shmem};

/// Whether a query cancel or termination is pending (asked between chunks of a copy).
fn interrupted() -> bool {
    // SAFETY: a plain read of a flag the signal handlers set.
    unsafe { pg_sys::InterruptPending != 0 }
}

fn build_time_json(db: &Database) -> serde_json::Value {
    let ts = datum::timestamptz_from_unix(db.metadata().build_epoch);
    TimestampWithTimeZone::try_from(ts)
        .map_or(serde_json::Value::Null, |t| json!(t.to_iso_string()))
}

/// `maxmind_reload() → jsonb`: opens and validates every configured database (metadata,
/// full search tree and data, test lookups), and only when all pass installs them and bumps
/// the shared generation so every backend reopens at its next lookup. When any fails, the
/// readers in service stay, the refused files are remembered cluster-wide (backends will
/// not pick them up on their own either), and the call raises an error naming the file.
///
/// Uses the settings as this session sees them: after editing postgresql.conf run
/// `SELECT pg_reload_conf();` before, in an earlier statement.
#[pg_extern(volatile, parallel_unsafe)]
fn maxmind_reload() -> Result<JsonB, ErrorReport> {
    shmem::require(&errors::RELOAD_NEEDS)?;
    let reloaded = reload_all();
    metrics::count(Metric::maxmind(if reloaded.is_ok() {
        MaxmindMetric::Reloads
    } else {
        MaxmindMetric::ReloadFailures
    }));
    reloaded
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.maxmind_reload() IS
    'Validate every configured database in full, then make every backend switch to it at its next lookup; on failure nothing changes. Needs shared_preload_libraries.';
-- Reloading affects every session of the cluster.
REVOKE ALL ON FUNCTION @extschema@.maxmind_reload() FROM PUBLIC;
"#,
    name = "maxmind_reload_acl",
    requires = [maxmind_reload]
);

fn reload_all() -> Result<JsonB, ErrorReport> {
    readers::with(|r| {
        let store = r.store()?.clone();
        // Every configured file is verified (or found verified) before anything switches.
        let mut opened = Vec::new();
        let mut failures: Vec<(DbSlot, DbError)> = Vec::new();
        for slot in r.configured_slots() {
            match slot.reader.verified_now(&store, &interrupted) {
                Ok(Some((db, verified))) => opened.push((slot.slot().clone(), db, verified)),
                Ok(None) => {}
                Err(e) => failures.push((slot.slot().clone(), e)),
            }
        }
        if interrupted() {
            check_for_interrupts!();
        }
        if let Some((slot, first)) = failures.first() {
            let others: Vec<String> = failures[1..].iter().map(|(_, e)| e.to_string()).collect();
            let detail = if others.is_empty() {
                "Nothing was reloaded; the databases in service stay in service.".to_owned()
            } else {
                format!(
                    "Nothing was reloaded; the databases in service stay in service. Also refused: {}.",
                    others.join("; ")
                )
            };
            return Err(errors::database(slot, first).set_detail(detail));
        }
        if opened.is_empty() {
            return Err(errors::not_configured(&DbSlot::City));
        }
        let generation = shmem::bump_generation();
        r.set_generation(generation);
        let mut summary = Vec::new();
        for (slot, db, verified) in opened {
            let reader = r
                .configured_slots()
                .find(|s| *s.slot() == slot)
                .expect("configured");
            summary.push(json!({
                "name": slot.name(),
                "path": reader.path().map(|p| p.display().to_string()),
                "database_type": db.metadata().database_type,
                "build_time": build_time_json(&db),
            }));
            if let Some(path) = reader.path() {
                store.set_current(path, &verified);
            }
            reader.reader.install(db, verified.source, Some(generation));
            reader
                .reader
                .refresh_decoded(&store, Wait::Yes, &interrupted);
            reader.report_decoded_error();
        }
        Ok(JsonB(
            json!({ "generation": generation, "databases": summary }),
        ))
    })
}

fn now() -> pg_sys::TimestampTz {
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

fn age_of(build_epoch: u64) -> Interval {
    let micros = now() - datum::timestamptz_from_unix(build_epoch);
    const DAY: i64 = 86_400_000_000;
    Interval::new(0, (micros / DAY) as i32, micros % DAY).expect("days and micros within range")
}

/// `maxmind_info()`: one row per configured database (`city`, `asn`, then the names of
/// `ip_inventory.databases`), as this backend has it in service. `status` is `ok`,
/// `not configured`, `error` (nothing in service) or `stale` (in service, but the file now at
/// the path could not be used; `error` says why).
// pgrx reads the column names from the signature, so the row type cannot be an alias.
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
fn maxmind_info() -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(path, Option<String>),
        name!(database_type, Option<String>),
        name!(build_time, Option<TimestampWithTimeZone>),
        name!(age, Option<Interval>),
        name!(ip_version, Option<i32>),
        name!(node_count, Option<i64>),
        name!(record_size, Option<i32>),
        name!(file_size, Option<i64>),
        name!(languages, Option<Vec<String>>),
        name!(generation, Option<i64>),
        name!(status, String),
        name!(error, Option<String>),
    ),
> {
    let rows: Vec<_> = readers::with(|r| {
        let store = r.store().cloned();
        r.configured_slots()
            .map(|slot| {
                let (status, error) = match (&store, slot.path()) {
                    (_, None) => ("not configured", None),
                    (Err(e), Some(_)) => ("error", Some(e.message().to_owned())),
                    (Ok(store), Some(_)) => {
                        // Open lazily like a lookup would; a failure is reported in the row.
                        let _ = slot.ensure_open(store);
                        let error = slot.reader.last_error.as_ref().map(DbError::reason);
                        let status = match (slot.reader.database(), &error) {
                            (None, _) => "error",
                            (Some(_), Some(_)) => "stale",
                            (Some(_), None) => "ok",
                        };
                        (status, error)
                    }
                };
                let db = slot.reader.database();
                let m = db.map(Database::metadata);
                (
                    slot.slot().name().to_owned(),
                    slot.path().map(|p| p.display().to_string()),
                    m.map(|m| m.database_type.clone()),
                    m.and_then(|m| {
                        TimestampWithTimeZone::try_from(datum::timestamptz_from_unix(m.build_epoch))
                            .ok()
                    }),
                    m.map(|m| age_of(m.build_epoch)),
                    m.map(|m| i32::from(m.ip_version)),
                    m.map(|m| i64::from(m.node_count)),
                    m.map(|m| i32::from(m.record_size)),
                    db.map(|db| db.file_size() as i64),
                    m.map(|m| m.languages.clone()),
                    db.and(slot.reader.generation).map(|g| g as i64),
                    status.to_owned(),
                    error,
                )
            })
            .collect()
    });
    TableIterator::new(rows)
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.maxmind_info() IS
    'One row per configured database as this session has it in service: path, type, build time, age, tree size, generation, status, error.';
-- It shows server file paths and error texts: monitoring roles and those granted EXECUTE.
REVOKE ALL ON FUNCTION @extschema@.maxmind_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.maxmind_info() TO pg_monitor;

-- The build times of the City and ASN databases in service (NULL: none): what the pending
-- rules and reports compare rows with. Shows nothing else, so anyone may call it.
CREATE FUNCTION @extschema@._ip_inventory_builds(OUT city_build timestamptz, OUT asn_build timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT max(i.build_time) FILTER (WHERE i.name = 'city'), max(i.build_time) FILTER (WHERE i.name = 'asn')
    FROM @extschema@.maxmind_info() AS i;
END;
COMMENT ON FUNCTION @extschema@._ip_inventory_builds() IS
    'Build times of the City and ASN databases in service (internal: pending rows, staleness).';
"#,
    name = "maxmind_info_acl",
    requires = [maxmind_info]
);

/// `maxmind_age() → interval`: age of the loaded MaxMind data, from the databases'
/// `build_epoch` metadata (not file times): the older of City and ASN.
#[pg_extern(stable, parallel_safe)]
fn maxmind_age() -> Result<Interval, ErrorReport> {
    readers::with(|r| {
        let store = r.store()?.clone();
        let mut oldest: Option<u64> = None;
        for slot in [&mut r.city, &mut r.asn] {
            if slot.path().is_some() {
                let epoch = slot.ensure_open(&store)?.metadata().build_epoch;
                oldest = Some(oldest.map_or(epoch, |o| o.min(epoch)));
            }
        }
        oldest
            .map(age_of)
            .ok_or_else(|| errors::not_configured(&DbSlot::City))
    })
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.maxmind_age() IS
    'Age of the loaded MaxMind data from the databases'' build_epoch metadata: the older of City and ASN.';
"#,
    name = "maxmind_age_comment",
    requires = [maxmind_age]
);

/// `maxmind_verify(path text, kind text default 'any') → jsonb`: fully verifies a file
/// without installing it (e.g. a download before it is moved into place). `kind` is
/// `city`, `asn`, `anonymous`, `isp`, `connection_type` or `any`. Reads server files: superusers and pg_read_server_files only.
#[pg_extern(volatile, parallel_safe)]
fn maxmind_verify(path: &str, kind: default!(&str, "'any'")) -> Result<JsonB, ErrorReport> {
    let kind = DbKind::parse(kind).ok_or_else(|| errors::unknown_kind(kind))?;
    if !super::lookup::may_read_server_files() {
        return Err(errors::path_not_allowed());
    }
    // The file is copied into the store and verified there, as a reload would: a file that
    // changes or is truncated while it is read cannot crash the server, and a reload of the
    // same bytes later finds them verified.
    let path = Path::new(path);
    let store = readers::with(|r| r.store().cloned())?;
    let copy = match store.verified(path, Wait::Yes, &interrupted) {
        Ok(Found::Verified(v)) => Ok(v.copy),
        Ok(Found::Busy) => unreachable!("a caller that waits is never told busy"),
        Err(e) => Err(e),
    };
    if interrupted() {
        check_for_interrupts!();
    }
    let db = copy
        .and_then(|copy| Database::open(&copy, kind))
        .map_err(|mut e| {
            e.path = path.to_path_buf();
            errors::database(&DbSlot::Path, &e)
        })?;
    let m = db.metadata();
    Ok(JsonB(json!({
        "path": path.display().to_string(),
        "database_type": m.database_type,
        "build_time": build_time_json(&db),
        "ip_version": m.ip_version,
        "node_count": m.node_count,
        "record_size": m.record_size,
        "file_size": db.file_size(),
    })))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.maxmind_verify(text, text) IS
    'Fully verify a MaxMind DB file without installing it; kind is city, asn, anonymous, isp, connection_type or any.';
-- Verifying reads server files.
REVOKE ALL ON FUNCTION @extschema@.maxmind_verify(text, text) FROM PUBLIC;
"#,
    name = "maxmind_verify_acl",
    requires = [maxmind_verify]
);
