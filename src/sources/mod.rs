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

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_inventory_ttl(text) IS
    'How long an answer of cymru, greynoise or rdns stays fresh (ip_inventory.<source>_ttl).';
"#,
    name = "ttl_comment",
    requires = [ip_inventory_ttl]
);
