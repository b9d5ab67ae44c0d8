//! The network sources' glue: reads the settings on the main thread, starts a run in the
//! core (`ip_inventory_core::sources::fetch`), and waits for its rows in short slices, checking for
//! interrupts in between, so `statement_timeout` and `pg_cancel_backend` stop a refresh
//! within a slice. The SQL that selects rows and stores answers is in `sql/cascade.sql`.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::RecvTimeoutError;
use std::time::SystemTime;

use ip_inventory_core::metrics::Metric;
use ip_inventory_core::sources::fetch::{
    self, CymruJob, CymruMode, Event, GreyNoiseJob, Job, Outcome, RdnsJob, Row, Stop,
};
use ip_inventory_core::sources::greynoise::{self, Quota};
use ip_inventory_core::sources::net::{self, Cancel};
use ip_inventory_core::sources::{dns, Source};
use ip_inventory_core::{secret, settings};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{Inet, JsonB};

use crate::{errors, gucs, metrics, shmem};

/// Raises the cancel flag when the waiting main thread leaves, normally or by an error
/// (a cancelled statement unwinds through here): the workers stop within a slice.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Asks one network source about the addresses (given as text: `host(ip_address)`); one
/// row per address. Called by
/// `cascade_refresh()`, which selects the addresses and stores the answers.
// pgrx needs the column names spelled out in the signature.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe, strict)]
fn ip_inventory_fetch(
    source: &str,
    ips: Array<'_, &str>,
) -> Result<
    TableIterator<
        'static,
        (
            name!(ip, Inet),
            name!(outcome, String),
            name!(answer, Option<JsonB>),
            name!(detail, Option<String>),
        ),
    >,
    ErrorReport,
> {
    let addresses = ips
        .iter()
        .flatten()
        .map(parse_inet)
        .collect::<Result<Vec<IpAddr>, ErrorReport>>()?;
    let source = super::parse_source(source)?;
    if !gucs::source_enabled(source) {
        return Err(errors::source_disabled(source));
    }
    // Networks the operator excluded are never asked about; cascade_refresh() does not
    // select them either.
    let skip = gucs::skip_networks(source);
    let (addresses, excluded): (Vec<IpAddr>, Vec<IpAddr>) = addresses
        .into_iter()
        .partition(|ip| !settings::in_networks(*ip, &skip));
    let mut rows: Vec<Row> = excluded
        .into_iter()
        .map(|ip| Row {
            ip,
            outcome: Outcome::Skipped,
            answer: None,
            detail: Some(format!(
                "in ip_inventory.{}_skip_networks: not asked",
                source.name()
            )),
        })
        .collect();
    let job = job(source)?;
    if addresses.is_empty() {
        return Ok(TableIterator::new(rows.into_iter().map(row_out)));
    }
    let cancel = Cancel::new();
    let _stop_workers = CancelOnDrop(cancel.clone());
    let source = job.source();
    let rx =
        fetch::start(job, addresses, cancel, shmem::counters()).map_err(|e| errors::threads(&e))?;
    let mut stop = None;
    loop {
        match rx.recv_timeout(net::SLICE) {
            Ok(Event::Row(row)) => {
                metrics::count(Metric::source(source, row.outcome.counted_as()));
                rows.push(row);
                if rows.len().is_multiple_of(64) {
                    check_for_interrupts!();
                }
            }
            Ok(Event::Stop(s)) => stop = Some(s),
            Err(RecvTimeoutError::Timeout) => {
                check_for_interrupts!();
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(Stop::Unauthorized(status)) = stop {
        return Err(errors::greynoise_unauthorized(status));
    }
    Ok(TableIterator::new(rows.into_iter().map(row_out)))
}

fn row_out(r: Row) -> (Inet, String, Option<JsonB>, Option<String>) {
    (
        Inet(r.ip.to_string()),
        r.outcome.as_str().to_owned(),
        r.answer.map(JsonB),
        r.detail,
    )
}

fn parse_inet(text: &str) -> Result<IpAddr, ErrorReport> {
    let host = text.split('/').next().unwrap_or(text);
    host.parse::<IpAddr>()
        .map(ip_inventory_core::canonical)
        .map_err(|_| errors::invalid_address_text(text))
}

/// The run a source needs, from the settings (read here, on the main thread).
fn job(source: Source) -> Result<Job, ErrorReport> {
    let s = gucs::network();
    Ok(match source {
        Source::Cymru => match s.cymru_mode {
            gucs::CymruMode::Dns => Job::Cymru(CymruJob {
                mode: CymruMode::Dns {
                    server: dns_server(&s)?,
                },
                timeout: s.dns_timeout,
                concurrency: s.concurrency,
            }),
            gucs::CymruMode::Whois => {
                // The check hook accepted the value, so it parses.
                let (host, port) = net::parse_endpoint(&s.cymru_whois_server, 43)
                    .map_err(|e| errors::network_setting("ip_inventory.cymru_whois_server", &e))?;
                Job::Cymru(CymruJob {
                    mode: CymruMode::Whois {
                        host,
                        port,
                        batch_size: s.cymru_batch_size,
                    },
                    timeout: s.cymru_timeout,
                    concurrency: 1,
                })
            }
        },
        Source::Rdns => Job::Rdns(RdnsJob {
            server: dns_server(&s)?,
            timeout: s.dns_timeout,
            concurrency: s.concurrency,
        }),
        Source::GreyNoise => {
            let (word, paused_until) =
                shmem::greynoise_state().ok_or_else(errors::quota_needs_preload)?;
            let key = secret::resolve(s.greynoise_api_key.as_deref().unwrap_or(""))
                .map_err(|e| errors::network_setting("ip_inventory.greynoise_api_key", &e))?;
            Job::GreyNoise(GreyNoiseJob {
                base_url: s.greynoise_url,
                key,
                timeout: s.greynoise_timeout,
                concurrency: s.concurrency,
                quota: Quota::new(word, s.greynoise_daily_quota),
                paused_until,
                clock: gucs::quota_clock(),
            })
        }
    })
}

fn dns_server(s: &gucs::NetworkSettings) -> Result<SocketAddr, ErrorReport> {
    match &s.dns_server {
        Some(v) => {
            dns::parse_server(v).map_err(|e| errors::network_setting("ip_inventory.dns_server", &e))
        }
        None => std::fs::read_to_string("/etc/resolv.conf")
            .ok()
            .and_then(|text| dns::nameserver_from_resolv_conf(&text))
            .ok_or_else(|| {
                errors::network_setting(
                    "ip_inventory.dns_server",
                    "it is empty and /etc/resolv.conf names no nameserver",
                )
            }),
    }
}

/// The GreyNoise quota as counted in shared memory: UTC day number (days since 1970), the
/// limit, calls made that day, calls left, and until when (seconds since 1970) GreyNoise
/// asked not to be called. `greynoise_quota()` presents it (internal).
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_safe, name = "_ip_inventory_greynoise_state")]
fn ip_inventory_greynoise_state() -> Result<
    TableIterator<
        'static,
        (
            name!(day, i32),
            name!(daily_quota, i64),
            name!(used, i64),
            name!(remaining, i64),
            name!(paused_until, i64),
        ),
    >,
    ErrorReport,
> {
    let (word, paused_until) = shmem::greynoise_state().ok_or_else(errors::quota_needs_preload)?;
    let limit = gucs::greynoise_daily_quota();
    let quota = Quota::new(word, limit);
    let now = SystemTime::now();
    let day = gucs::quota_clock().map_or_else(|| greynoise::utc_day(now), greynoise::utc_day_of);
    let paused = greynoise::paused_for(paused_until, now).map_or(0, |_| {
        paused_until.load(std::sync::atomic::Ordering::Acquire)
    });
    Ok(TableIterator::once((
        i32::try_from(day).unwrap_or(i32::MAX),
        i64::from(limit),
        i64::from(quota.used(day)),
        i64::from(quota.remaining(day)),
        paused,
    )))
}

/// How many GreyNoise calls this scheduled run may make: the calls left today divided by
/// the runs left until midnight UTC, one every `ip_inventory.greynoise_refresh_interval`
/// (core: `greynoise::paced_share`). cascade_refresh() takes the smaller of this and its
/// limit (internal).
#[pg_extern(volatile, parallel_safe, name = "_ip_inventory_greynoise_pace")]
fn ip_inventory_greynoise_pace() -> Result<i64, ErrorReport> {
    let (word, _) = shmem::greynoise_state().ok_or_else(errors::quota_needs_preload)?;
    let now = gucs::quota_clock().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let remaining =
        Quota::new(word, gucs::greynoise_daily_quota()).remaining(greynoise::utc_day_of(now));
    Ok(i64::from(greynoise::paced_share(
        remaining,
        now,
        gucs::greynoise_refresh_interval_secs(),
    )))
}

/// Raises the shared-memory count of `day` to `used` (the count saved in the database
/// before a restart); never lowers it.
#[pg_extern(
    volatile,
    parallel_unsafe,
    strict,
    name = "_ip_inventory_greynoise_seed"
)]
fn ip_inventory_greynoise_seed(day: i32, used: i64) -> Result<(), ErrorReport> {
    let (word, _) = shmem::greynoise_state().ok_or_else(errors::quota_needs_preload)?;
    if let (Ok(day), Ok(used)) = (u32::try_from(day), u32::try_from(used)) {
        Quota::new(word, gucs::greynoise_daily_quota()).seed(day, used);
    }
    Ok(())
}

extension_sql!(
    r#"
COMMENT ON FUNCTION @extschema@.ip_inventory_fetch(text, text[]) IS
    'Asks one network source (cymru, greynoise, rdns) about addresses, one row per address: outcome found, not_found, failed or skipped, the answer, why. Writes nothing; cascade_refresh() uses it.';
COMMENT ON FUNCTION @extschema@._ip_inventory_greynoise_state() IS 'The GreyNoise quota as counted in shared memory (internal: greynoise_quota()).';
COMMENT ON FUNCTION @extschema@._ip_inventory_greynoise_seed(int, bigint) IS 'Raises the shared GreyNoise count to the one saved before a restart (internal).';
COMMENT ON FUNCTION @extschema@._ip_inventory_greynoise_pace() IS 'The GreyNoise calls a scheduled run may make: calls left today / runs left until midnight UTC (internal: cascade_refresh()).';
-- Network calls are for the refresh and the roles granted it; the quota is a counter.
REVOKE ALL ON FUNCTION @extschema@.ip_inventory_fetch(text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_state() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_seed(int, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@._ip_inventory_greynoise_pace() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._ip_inventory_greynoise_state() TO pg_monitor;
"#,
    name = "network_functions_acl",
    requires = [
        ip_inventory_fetch,
        ip_inventory_greynoise_state,
        ip_inventory_greynoise_seed,
        ip_inventory_greynoise_pace
    ]
);
