//! Citus: what the observe trigger, backfill, retention and attach need to know when a table
//! is a distributed event table or one of its shards (sql/citus.sql holds the rest). On a
//! single node every question here answers "no" after one catalog lookup, and nothing else
//! changes.

use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::spi::SpiClient;

use crate::errors;

/// Attached columns: the address columns and the time column.
pub type AttachedColumns = (Vec<String>, Option<String>);

/// The attached columns of the distributed event table `shard` belongs to, when it is a
/// shard of one (the observe trigger fires on shards, on the worker holding them).
pub fn shard_columns(
    client: &SpiClient<'_>,
    schema: &str,
    shard: pg_sys::Oid,
) -> Result<Option<AttachedColumns>, ErrorReport> {
    let t = client
        .select(
            &format!(
                "SELECT c.ip_columns, c.ts_column
                 FROM {schema}._ip_inventory_citus_shard_columns($1::pg_catalog.regclass) AS c"
            ),
            Some(1),
            &[shard.into()],
        )
        .map_err(errors::spi)?;
    if t.is_empty() {
        return Ok(None);
    }
    let t = t.first();
    Ok(Some((
        t.get::<Vec<String>>(1)
            .map_err(errors::spi)?
            .unwrap_or_default(),
        t.get::<String>(2).map_err(errors::spi)?,
    )))
}

/// Whether `rel` is a shard of a distributed table (then its events are recorded through
/// `_ip_inventory_citus_record`, on this node).
pub fn is_shard(
    client: &SpiClient<'_>,
    schema: &str,
    rel: pg_sys::Oid,
) -> Result<bool, ErrorReport> {
    client
        .select(
            &format!(
                "SELECT s.shardid IS NOT NULL FROM {schema}._ip_inventory_citus_shard_of($1::pg_catalog.regclass) AS s"
            ),
            Some(1),
            &[rel.into()],
        )
        .map_err(errors::spi)?
        .first()
        .get::<bool>(1)
        .map(|b| b.unwrap_or(false))
        .map_err(errors::spi)
}

/// Whether `rel` is a Citus distributed table (Citus loaded and the table in its metadata).
pub fn is_distributed(
    client: &SpiClient<'_>,
    schema: &str,
    rel: pg_sys::Oid,
) -> Result<bool, ErrorReport> {
    client
        .select(
            &format!("SELECT {schema}._ip_inventory_citus_table($1::pg_catalog.regclass)"),
            Some(1),
            &[rel.into()],
        )
        .map_err(errors::spi)?
        .first()
        .get::<bool>(1)
        .map(|b| b.unwrap_or(false))
        .map_err(errors::spi)
}
