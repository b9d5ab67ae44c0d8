//! The network sources in SQL (core: `ip_inventory_core::sources`): the refresh's fetch and
//! the GreyNoise quota (`fetch`), claims on addresses (`claims`), and what is asked of a
//! source by name.

pub mod claims;
pub mod fetch;
pub mod queue;

use ip_inventory_core::sources::Source;
use pgrx::pg_sys::{self, panic::ErrorReport};
use pgrx::prelude::*;

use crate::datum::InetArg;
use crate::{errors, gucs};

/// The network source SQL names.
pub fn parse_source(name: &str) -> Result<Source, ErrorReport> {
    Source::parse(name).ok_or_else(|| errors::unknown_source(name))
}

/// `ip_inventory_ttl(source) → interval`: how long an answer of `cymru`, `greynoise` or
/// `rdns` stays fresh (the `ip_inventory.<source>_ttl` settings).
#[pg_extern(stable, strict, parallel_safe)]
fn ip_inventory_ttl(source: &str) -> Result<Interval, ErrorReport> {
    Ok(ttl(parse_source(source)?))
}

fn ttl(source: Source) -> Interval {
    let secs = gucs::ttl_secs(source);
    Interval::new(0, secs / 86_400, i64::from(secs % 86_400) * 1_000_000)
        .expect("days and micros within range")
}

/// `_ip_inventory_verdict_due(ip, ip_class, asn_source, cymru_ts, greynoise_ts, rdns_ts) →
/// text[]`: the network sources that serve the row and have no fresh answer for it, among
/// those switched on and not told to skip its network: what `ip_verdict` reports as stale
/// and queues. One call instead of a loop of settings calls per source in PL/pgSQL (the
/// verdict is on a live consumer's hot path). Fresh means as `cascade_refresh` selects:
/// answered after `now() - ip_inventory_ttl(source)`.
#[pg_extern(stable, parallel_safe, name = "_ip_inventory_verdict_due")]
fn ip_inventory_verdict_due(
    ip: Option<InetArg>,
    ip_class: Option<&str>,
    asn_source: Option<&str>,
    cymru_ts: Option<TimestampWithTimeZone>,
    greynoise_ts: Option<TimestampWithTimeZone>,
    rdns_ts: Option<TimestampWithTimeZone>,
) -> Vec<&'static str> {
    let Some(ip) = ip else {
        return Vec::new();
    };
    let public = ip_class == Some("public");
    // SAFETY: a plain read; now() is the transaction's start, as in SQL.
    let now =
        TimestampWithTimeZone::try_from(unsafe { pg_sys::GetCurrentTransactionStartTimestamp() })
            .ok();
    Source::ALL
        .iter()
        .copied()
        .filter(|&source| {
            let answered = match source {
                Source::Cymru => cymru_ts,
                Source::GreyNoise => greynoise_ts,
                Source::Rdns => rdns_ts,
            };
            let stale = match (answered, now) {
                (Some(at), Some(now)) => at.into_inner() < (now - ttl(source)).into_inner(),
                _ => true,
            };
            source.serves(ip.addr, public, asn_source)
                && stale
                && gucs::source_enabled(source)
                && !gucs::skip_networks(source)
                    .iter()
                    .any(|n| n.contains(ip.addr))
        })
        .map(Source::name)
        .collect()
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
COMMENT ON FUNCTION @extschema@._ip_inventory_verdict_due(inet, text, text, timestamptz, timestamptz, timestamptz) IS
    'The network sources that serve a row, are switched on, do not skip its network and have no fresh answer for it (internal: ip_verdict).';
"#,
    name = "ttl_comment",
    requires = [
        ip_inventory_ttl,
        ip_inventory_source_enabled,
        ip_inventory_skip_networks,
        ip_inventory_refresh_limit,
        ip_inventory_verdict_due
    ]
);
