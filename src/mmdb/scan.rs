//! `mmdb_lookup(ip, database, path)`: one path of a record; `mmdb_networks(database,
//! within)`: every network of a database under a prefix, with its record, as a table.

use std::path::Path;

use ip_inventory_core::mmdb::scan::{self, NetworkScan};
use ip_inventory_core::mmdb::DbSlot;
use ipnetwork::IpNetwork;
use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;
use pgrx::{check_for_interrupts, impl_sql_translatable, FromDatum, IntoDatum, JsonB};

use super::lookup::may_read_server_files;
use super::readers;
use crate::datum::{self, InetArg};
use crate::errors;

/// `mmdb_lookup(inet, database text, path text[]) → jsonb`: the value at `path` of the record
/// (MaxMind's data path: map keys, array indexes, negative from the end), decoding nothing
/// else of it. NULL when the database has no record for the address or the record has
/// nothing at the path.
#[pg_extern(stable, strict, parallel_safe, name = "mmdb_lookup")]
fn mmdb_lookup_path(
    ip: InetArg,
    database: &str,
    path: Vec<Option<String>>,
) -> Result<Option<JsonB>, ErrorReport> {
    if Path::new(database).is_absolute() && !may_read_server_files() {
        return Err(errors::path_not_allowed());
    }
    let path: Vec<String> = path
        .into_iter()
        .map(|e| e.ok_or_else(null_path_element))
        .collect::<Result<_, _>>()?;
    scan::check_path(&path).map_err(|e| {
        errors::report(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("mmdb_lookup: {e}"),
        )
    })?;
    readers::with(|r| {
        r.lookup(
            |r| r.slot_for(database),
            ip.addr,
            |db, hit| match hit {
                Some(hit) => {
                    let value = db.record_path_json(hit, &path)?;
                    Ok((value.map(JsonB), hit.has_data()))
                }
                None => Ok((None, false)),
            },
        )
    })
    .map_err(|e| *e)
}

fn null_path_element() -> ErrorReport {
    errors::report(
        PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        "mmdb_lookup: a path element is NULL".into(),
    )
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.mmdb_lookup(inet, text, text[]) IS
    'The value at path of the record (MaxMind''s data path: map keys, array indexes, negative from the end), decoding nothing else; NULL when there is no record or nothing at the path.';
"#,
    name = "mmdb_lookup_path_comment",
    requires = [mmdb_lookup_path]
);

/// A `cidr` argument with its netmask (`InetArg` keeps the address alone).
#[derive(Debug, Clone, Copy)]
pub struct CidrArg(pub IpNetwork);

impl FromDatum for CidrArg {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a cidr datum (the SQL signature says so).
        let payload = unsafe { datum::inet_payload(datum) };
        let net = ip_inventory_core::inet::decode(payload)
            .and_then(|(addr, bits)| IpNetwork::new(addr, bits).map_err(|e| e.to_string()));
        match net {
            Ok(net) => Some(CidrArg(net)),
            Err(detail) => {
                errors::bad_inet(detail).report(pgrx::PgLogLevel::ERROR);
                unreachable!("an ERROR report does not return")
            }
        }
    }
}

datum::non_null_arg!(CidrArg);

impl_sql_translatable!(CidrArg, arg_only = "cidr");

/// A `cidr` column value built directly (no text round trip).
pub struct CidrDatum(pub pg_sys::Datum);

impl IntoDatum for CidrDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::CIDROID
    }
}

unsafe impl BoxRet for CidrDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

impl_sql_translatable!(CidrDatum, "cidr");

type NetworkRow = (name!(network, CidrDatum), name!(data, JsonB));

/// The rows of `mmdb_networks`: one network per call, interrupts checked before each.
struct Rows {
    scan: NetworkScan,
    slot: DbSlot,
}

impl Iterator for Rows {
    type Item = NetworkRow;

    fn next(&mut self) -> Option<NetworkRow> {
        // Each row is produced in the per-row memory context: the scan's memory stays that of
        // one record, whatever the number of networks (the executor keeps what it needs).
        check_for_interrupts!();
        match self.scan.next()? {
            Ok((network, data)) => Some((CidrDatum(datum::network_datum(network)), JsonB(data))),
            Err(e) => {
                errors::database(&self.slot, &e).report(pgrx::PgLogLevel::ERROR);
                unreachable!("an ERROR report does not return")
            }
        }
    }
}

/// `mmdb_networks(database text, within cidr DEFAULT NULL) → TABLE(network cidr, data jsonb)`:
/// every network of the database (under `within`) that has a record, in address order.
#[pg_extern(stable, parallel_safe)]
fn mmdb_networks(
    database: Option<&str>,
    within: default!(Option<CidrArg>, "NULL"),
) -> Result<TableIterator<'static, (name!(network, CidrDatum), name!(data, JsonB))>, ErrorReport> {
    let Some(database) = database else {
        return Err(errors::report(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "mmdb_networks: database must not be NULL".into(),
        ));
    };
    if Path::new(database).is_absolute() && !may_read_server_files() {
        return Err(errors::path_not_allowed());
    }
    let (scan, slot) = readers::with(|r| {
        let store = r.store()?.clone();
        let slot = r.slot_for(database)?;
        let db = slot.ensure_open(&store)?;
        let scan = db.scan(within.map(|w| w.0)).map_err(|e| slot.error(&e))?;
        Ok::<_, ErrorReport>((scan, slot.slot().clone()))
    })?;
    Ok(TableIterator::new(Rows { scan, slot }))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.mmdb_networks(text, cidr) IS
    'Every network of a MaxMind DB file (under within) that has a record, with the record as jsonb, in address order; streamed and cancellable. Not granted to PUBLIC: it exports a whole licensed database.';
REVOKE ALL ON FUNCTION @extschema@.mmdb_networks(text, cidr) FROM PUBLIC;
"#,
    name = "mmdb_networks_acl",
    requires = [mmdb_networks]
);
