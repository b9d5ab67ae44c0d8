//! The network sources in SQL (core: `ip_inventory_core::sources`): the refresh's fetch and
//! the GreyNoise quota (`fetch`), claims on addresses (`claims`), and what is asked of a
//! source by name.

pub mod claims;
pub mod fetch;
pub mod queue;

use ip_inventory_core::sources::Source;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::{errors, gucs};

/// The network source SQL names.
pub fn parse_source(name: &str) -> Result<Source, ErrorReport> {
    Source::parse(name).ok_or_else(|| errors::unknown_source(name))
}

/// `ip_inventory_ttl(source) → interval`: how long an answer of `cymru`, `greynoise` or
/// `rdns` stays fresh (the `ip_inventory.<source>_ttl` settings).
#[pg_extern(stable, strict, parallel_safe)]
fn ip_inventory_ttl(source: &str) -> Result<Interval, ErrorReport> {
    let secs = gucs::ttl_secs(parse_source(source)?);

    Ok(
        Interval::new(0, secs / 86_400, i64::from(secs % 86_400) * 1_000_000)
            .expect("days and micros within range"),
    )
}

/// Whether a network source is switched on (`ip_inventory.<source>_enabled`); read by
/// cascade_refresh() and ip_inventory_health() (internal).
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_source_enabled")]
fn ip_inventory_source_enabled(source: &str) -> Result<bool, ErrorReport> {
    Ok(gucs::source_enabled(parse_source(source)?))
}

/// The networks a source never asks about (`ip_inventory.<source>_skip_networks`), as text
/// SQL casts to `cidr[]` (internal).
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_skip_networks")]
fn ip_inventory_skip_networks(source: &str) -> Result<Vec<String>, ErrorReport> {
    Ok(gucs::skip_networks(parse_source(source)?)
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// How many rows cascade_refresh() takes from `source` (maxmind or a network source) when
/// it is given no lim (`ip_inventory.<source>_refresh_limit`; internal).
#[pg_extern(stable, strict, parallel_safe, name = "_ip_inventory_refresh_limit")]
fn ip_inventory_refresh_limit(source: &str) -> Result<i32, ErrorReport> {
    if source == "maxmind" {
        return Ok(gucs::refresh_limit(None));
    }
    Ok(gucs::refresh_limit(Some(parse_source(source)?)))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_inventory_ttl(text) IS
    'How long an answer of cymru, greynoise or rdns stays fresh (ip_inventory.<source>_ttl).';
COMMENT ON FUNCTION @extschema@._ip_inventory_source_enabled(text) IS
    'Whether a network source is switched on: ip_inventory.<source>_enabled (internal: cascade_refresh, ip_inventory_health).';
COMMENT ON FUNCTION @extschema@._ip_inventory_skip_networks(text) IS
    'The networks a source never asks about: ip_inventory.<source>_skip_networks (internal: cascade_refresh, ip_inventory_staleness).';
COMMENT ON FUNCTION @extschema@._ip_inventory_refresh_limit(text) IS
    'Rows cascade_refresh() takes from a source without lim: ip_inventory.<source>_refresh_limit (internal).';
"#,
    name = "ttl_comment",
    requires = [
        ip_inventory_ttl,
        ip_inventory_source_enabled,
        ip_inventory_skip_networks,
        ip_inventory_refresh_limit
    ]
);
