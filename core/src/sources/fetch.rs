//! One refresh run of a network source: asks the source about a list of addresses on worker
//! threads and reports one [`Row`] per address over a channel, so the caller (a backend's
//! main thread) can wait in short slices and stay cancellable.
//!
//! Every address gets exactly one row: found, not found (a real "nothing known" answer),
//! failed (recorded, retried next run) or skipped (not asked: quota, a 429 pause, a stop).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::cymru;
use super::dns::{self, Lookup};
use super::greynoise::{self, Quota, Reply};
use super::net::NetErrorKind;
use super::net::{self, Cancel, NetError};
use super::Source;
use crate::metrics::{Counters, Metric, SourceMetric};
use crate::sanitize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Found,
    NotFound,
    Failed,
    Skipped,
}

impl Outcome {
    /// The counter of answers of this kind.
    pub fn counted_as(self) -> SourceMetric {
        match self {
            Outcome::Found => SourceMetric::Found,
            Outcome::NotFound => SourceMetric::NotFound,
            Outcome::Failed => SourceMetric::Failed,
            Outcome::Skipped => SourceMetric::Skipped,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::NotFound => "not_found",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One address's result. The constructors are the last guard of "answers are data": every
/// answer passes [`sanitize::json`] and every detail [`sanitize::detail`], whatever the
/// source did before, so nothing a server sends can make the row unstorable.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ip: IpAddr,
    pub outcome: Outcome,
    /// The answer to store (found, not found).
    pub answer: Option<Value>,
    /// Why it failed or was skipped.
    pub detail: Option<String>,
}

impl Row {
    fn found(ip: IpAddr, answer: Value) -> Self {
        Row {
            ip,
            outcome: Outcome::Found,
            answer: Some(sanitize::json(answer)),
            detail: None,
        }
    }
    fn not_found(ip: IpAddr, answer: Value) -> Self {
        Row {
            ip,
            outcome: Outcome::NotFound,
            answer: Some(sanitize::json(answer)),
            detail: None,
        }
    }
    fn failed(ip: IpAddr, why: impl ToString) -> Self {
        Row {
            ip,
            outcome: Outcome::Failed,
            answer: None,
            detail: Some(sanitize::detail(&why.to_string())),
        }
    }
    fn skipped(ip: IpAddr, why: impl ToString) -> Self {
        Row {
            ip,
            outcome: Outcome::Skipped,
            answer: None,
            detail: Some(sanitize::detail(&why.to_string())),
        }
    }
}

/// Why a run stopped early: the caller raises it as an error once every row is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// GreyNoise refused the key (HTTP status).
    Unauthorized(u16),
}

pub enum Event {
    Row(Row),
    Stop(Stop),
}

#[derive(Debug, Clone)]
pub enum CymruMode {
    Whois {
        host: String,
        port: u16,
        batch_size: usize,
    },
    Dns {
        server: SocketAddr,
    },
}

#[derive(Debug, Clone)]
pub struct CymruJob {
    pub mode: CymruMode,
    pub timeout: Duration,
    pub concurrency: usize,
}

pub struct GreyNoiseJob {
    pub base_url: String,
    pub key: Option<String>,
    pub timeout: Duration,
    pub concurrency: usize,
    pub quota: Quota<'static>,
    pub paused_until: &'static AtomicI64,
    /// The time (seconds since 1970) whose UTC day the quota counts in; `None`: the real
    /// clock (tests simulate a day with `ip_inventory.quota_clock`).
    pub clock: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct RdnsJob {
    pub server: SocketAddr,
    pub timeout: Duration,
    pub concurrency: usize,
}

pub enum Job {
    Cymru(CymruJob),
    GreyNoise(GreyNoiseJob),
    Rdns(RdnsJob),
}

impl Job {
    /// The source whose counters this run counts into.
    pub fn source(&self) -> Source {
        match self {
            Job::Cymru(_) => Source::Cymru,
            Job::GreyNoise(_) => Source::GreyNoise,
            Job::Rdns(_) => Source::Rdns,
        }
    }
}

/// How a request ended, for the counters.
enum Ended {
    Answered,
    Failed(NetErrorKind),
    /// Stopped by the caller: counted as a request, neither success nor failure.
    Cancelled,
}

impl Ended {
    fn of_error(e: &NetError) -> Ended {
        NetErrorKind::of(e).map_or(Ended::Cancelled, Ended::Failed)
    }
    fn of_result<T>(r: &Result<T, NetError>) -> Ended {
        r.as_ref().map_or_else(Ended::of_error, |_| Ended::Answered)
    }
}

/// Counts a source's requests (number, latency, failures by kind) in the shared counters;
/// counts nothing without them. Copied into every worker.
#[derive(Clone, Copy)]
struct Meter {
    counters: Option<&'static Counters>,
    source: Source,
}

impl Meter {
    /// Runs one request and counts it as `ended` classifies its result.
    fn request<T>(self, run: impl FnOnce() -> T, ended: impl FnOnce(&T) -> Ended) -> T {
        let Some(counters) = self.counters else {
            return run();
        };
        let started = Instant::now();
        let result = run();
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        match ended(&result) {
            Ended::Answered => counters.request(self.source, ns, None),
            Ended::Failed(kind) => counters.request(self.source, ns, Some(kind)),
            Ended::Cancelled => {}
        }
        result
    }

    fn error(self, kind: NetErrorKind) {
        if let Some(c) = self.counters {
            c.add(Metric::net_error(self.source, kind), 1);
        }
    }
}

/// Starts a run; the channel closes when every address has its row (or the run was
/// cancelled: then rows may be missing, and the caller is not waiting any more anyway).
/// With `counters`, every request is counted there as it ends.
pub fn start(
    job: Job,
    ips: Vec<IpAddr>,
    cancel: Cancel,
    counters: Option<&'static Counters>,
) -> std::io::Result<Receiver<Event>> {
    let (tx, rx) = mpsc::channel();
    let meter = Meter {
        counters,
        source: job.source(),
    };
    match job {
        Job::Cymru(CymruJob {
            mode:
                CymruMode::Whois {
                    host,
                    port,
                    batch_size,
                },
            timeout,
            ..
        }) => {
            net::spawn_worker("ipi-cymru-whois", move || {
                whois_run(&host, port, batch_size, timeout, ips, &cancel, &tx, meter)
            })?;
        }
        Job::Cymru(CymruJob {
            mode: CymruMode::Dns { server },
            timeout,
            concurrency,
        }) => {
            let names: Arc<Mutex<HashMap<u32, Option<String>>>> = Arc::default();
            parallel(ips, concurrency, cancel, tx, move |ip, cancel| {
                cymru_dns(server, ip, timeout, cancel, &names, meter)
            })?;
        }
        Job::Rdns(RdnsJob {
            server,
            timeout,
            concurrency,
        }) => {
            parallel(ips, concurrency, cancel, tx, move |ip, cancel| {
                rdns(server, ip, timeout, cancel, meter)
            })?;
        }
        Job::GreyNoise(job) => greynoise_run(job, ips, cancel, tx, meter)?,
    }
    Ok(rx)
}

/// Runs `ask` for each address on up to `concurrency` threads.
fn parallel<F>(
    ips: Vec<IpAddr>,
    concurrency: usize,
    cancel: Cancel,
    tx: Sender<Event>,
    ask: F,
) -> std::io::Result<()>
where
    F: Fn(IpAddr, &Cancel) -> Row + Send + Sync + 'static,
{
    let ips = Arc::new(ips);
    let next = Arc::new(AtomicUsize::new(0));
    let ask = Arc::new(ask);
    for i in 0..concurrency.clamp(1, 64).min(ips.len().max(1)) {
        let (ips, next, ask, cancel, tx) = (
            ips.clone(),
            next.clone(),
            ask.clone(),
            cancel.clone(),
            tx.clone(),
        );
        net::spawn_worker(&format!("ipi-net-{i}"), move || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&ip) = ips.get(k) else { break };
            if cancel.is_cancelled() || tx.send(Event::Row(ask(ip, &cancel))).is_err() {
                break;
            }
        })?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn whois_run(
    host: &str,
    port: u16,
    batch_size: usize,
    timeout: Duration,
    ips: Vec<IpAddr>,
    cancel: &Cancel,
    tx: &Sender<Event>,
    meter: Meter,
) {
    // After a batch that could not connect or timed out, the server is unreachable: the
    // remaining batches fail at once instead of each waiting out the timeout.
    let mut unreachable: Option<NetError> = None;
    for batch in ips.chunks(batch_size.max(1)) {
        if cancel.is_cancelled() {
            return;
        }
        let result = match &unreachable {
            Some(e) => cymru::BulkResult {
                error: Some(e.clone()),
                ..Default::default()
            },
            None => meter.request(
                || cymru::whois_bulk(host, port, batch, timeout, cancel),
                |r| r.error.as_ref().map_or(Ended::Answered, Ended::of_error),
            ),
        };
        if matches!(
            result.error,
            Some(NetError::Connect(_) | NetError::Timeout(_))
        ) && result.answers.is_empty()
        {
            unreachable = result.error.clone();
        }
        for &ip in batch {
            let row = match result.answers.get(&ip) {
                Some(a) if a.is_announced() => Row::found(ip, a.to_json("whois")),
                Some(a) => Row::not_found(ip, a.to_json("whois")),
                None => Row::failed(ip, unanswered(&result)),
            };
            if tx.send(Event::Row(row)).is_err() {
                return;
            }
        }
    }
}

fn unanswered(result: &cymru::BulkResult) -> String {
    match (&result.error, result.bad_lines.first()) {
        (Some(e), _) => format!("Team Cymru whois: {e}"),
        (None, Some(line)) => format!(
            "Team Cymru whois: no answer for the address; {} unreadable line(s), e.g. \"{line}\"",
            result.bad_count
        ),
        (None, None) => "Team Cymru whois: no answer for the address".to_owned(),
    }
}

fn cymru_dns(
    server: SocketAddr,
    ip: IpAddr,
    timeout: Duration,
    cancel: &Cancel,
    names: &Mutex<HashMap<u32, Option<String>>>,
    meter: Meter,
) -> Row {
    let txt =
        |name: &str| meter.request(|| dns::txt(server, name, timeout, cancel), Ended::of_result);
    let origin = match txt(&cymru::origin_name(ip)) {
        Ok(Lookup::Found(txts)) => match cymru::origin_of(ip, &txts) {
            Ok(Some(a)) => a,
            Ok(None) => return Row::failed(ip, "Team Cymru DNS: empty origin answer"),
            Err(e) => return Row::failed(ip, format!("Team Cymru DNS: {e}")),
        },
        Ok(Lookup::NxDomain | Lookup::NoData) => {
            let na = cymru::Answer {
                asns: vec![],
                prefix: None,
                country: None,
                registry: None,
                allocated: None,
                as_name: None,
            };
            return Row::not_found(ip, na.to_json("dns"));
        }
        Err(e) => return Row::failed(ip, format!("Team Cymru DNS: {e}")),
    };
    // An origin record may say `NA` (not announced), as whois does: no AS name to ask for.
    let Some(&asn) = origin.asns.first() else {
        return Row::not_found(ip, origin.to_json("dns"));
    };
    let known = names.lock().ok().and_then(|m| m.get(&asn).cloned());
    let as_name = match known {
        Some(name) => name,
        None => match txt(&cymru::as_name_query(asn)) {
            Ok(Lookup::Found(txts)) => {
                let name = txts
                    .iter()
                    .filter_map(|t| cymru::parse_as_name_txt(t).ok())
                    .find(|(n, _)| *n == asn)
                    .and_then(|(_, name)| name);
                if let Ok(mut m) = names.lock() {
                    m.insert(asn, name.clone());
                }
                name
            }
            Ok(_) => None,
            Err(e) => return Row::failed(ip, format!("Team Cymru DNS (AS{asn} name): {e}")),
        },
    };
    Row::found(ip, cymru::Answer { as_name, ..origin }.to_json("dns"))
}

fn rdns(server: SocketAddr, ip: IpAddr, timeout: Duration, cancel: &Cancel, meter: Meter) -> Row {
    match meter.request(|| dns::ptr(server, ip, timeout, cancel), Ended::of_result) {
        Ok(Lookup::Found(names)) => {
            Row::found(ip, json!({ "name": names.first(), "names": names }))
        }
        Ok(other) => Row::not_found(ip, json!({ "name": null, "status": other.status() })),
        Err(e) => Row::failed(ip, format!("reverse DNS: {e}")),
    }
}

const IPV4_ONLY: &str = "GreyNoise Community answers for IPv4 only";

fn greynoise_run(
    job: GreyNoiseJob,
    ips: Vec<IpAddr>,
    cancel: Cancel,
    tx: Sender<Event>,
    meter: Meter,
) -> std::io::Result<()> {
    // One client for all workers (its agent pools connections).
    let client = greynoise::Client::new(&job.base_url, job.key, job.timeout);
    // Set by the first 401 or 429: every address not yet asked is skipped.
    let stopped: Arc<OnceLock<String>> = Arc::default();
    let (quota, paused_until, clock) = (job.quota, job.paused_until, job.clock);
    let stop_tx = tx.clone();
    parallel(ips, job.concurrency, cancel, tx, move |ip, _cancel| {
        // Recorded (with the time), so the row is not due again before the TTL.
        let IpAddr::V4(v4) = ip else {
            return Row {
                answer: Some(json!({ "skipped": IPV4_ONLY })),
                ..Row::skipped(ip, IPV4_ONLY)
            };
        };
        if let Some(why) = stopped.get() {
            return Row::skipped(ip, why);
        }
        let now = SystemTime::now();
        if let Some(wait) = greynoise::paused_for(paused_until, now) {
            return Row::skipped(
                ip,
                format!(
                    "GreyNoise asked to wait (HTTP 429): {}s left",
                    wait.as_secs()
                ),
            );
        }
        let day = clock.map_or_else(|| greynoise::utc_day(now), greynoise::utc_day_of);
        if !quota.try_claim(day) {
            meter.error(NetErrorKind::QuotaExhausted);
            return Row::skipped(
                ip,
                "the GreyNoise daily quota is used up (ip_inventory.greynoise_daily_quota)",
            );
        }
        let reply = meter.request(
            || client.lookup(v4),
            |reply| match reply {
                Reply::Observed(_) | Reply::NotObserved(_) => Ended::Answered,
                Reply::Unauthorized(_) => Ended::Failed(NetErrorKind::Unauthorized),
                Reply::RateLimited(_) => Ended::Failed(NetErrorKind::RateLimited),
                Reply::Failed(e) => Ended::of_error(e),
            },
        );
        match reply {
            Reply::Observed(v) => Row::found(ip, v),
            Reply::NotObserved(v) => Row::not_found(ip, v),
            Reply::Failed(e) => Row::failed(ip, format!("GreyNoise: {e}")),
            Reply::RateLimited(wait) => {
                greynoise::pause(paused_until, SystemTime::now(), wait);
                let _ = stopped.set(format!(
                    "GreyNoise answered 429: waiting {}s (Retry-After)",
                    wait.as_secs()
                ));
                Row::failed(
                    ip,
                    format!("GreyNoise: HTTP 429, retry after {}s", wait.as_secs()),
                )
            }
            Reply::Unauthorized(status) => {
                if stopped
                    .set(format!("GreyNoise rejected the API key (HTTP {status})"))
                    .is_ok()
                {
                    let _ = stop_tx.send(Event::Stop(Stop::Unauthorized(status)));
                }
                Row::failed(ip, format!("GreyNoise: HTTP {status}"))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::RData;
    use std::sync::atomic::AtomicU64;

    fn drain(rx: Receiver<Event>) -> (Vec<Row>, Vec<Stop>) {
        let (mut rows, mut stops) = (Vec::new(), Vec::new());
        for e in rx {
            match e {
                Event::Row(r) => rows.push(r),
                Event::Stop(s) => stops.push(s),
            }
        }
        rows.sort_by_key(|r| r.ip);
        (rows, stops)
    }

    #[test]
    fn an_unreachable_whois_server_fails_every_address_once_without_waiting_per_batch() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let ips: Vec<IpAddr> = (1..=25).map(|i| IpAddr::from([8, 8, 8, i])).collect();
        let job = Job::Cymru(CymruJob {
            mode: CymruMode::Whois {
                host: "127.0.0.1".into(),
                port,
                batch_size: 10,
            },
            timeout: Duration::from_secs(1),
            concurrency: 1,
        });
        static COUNTERS: Counters = Counters::new();
        let (rows, stops) = drain(start(job, ips.clone(), Cancel::new(), Some(&COUNTERS)).unwrap());
        assert!(stops.is_empty());
        let count = |m| COUNTERS.get(Metric::source(Source::Cymru, m));
        assert_eq!(
            count(SourceMetric::Requests),
            1,
            "later batches are not attempted"
        );
        assert_eq!(count(SourceMetric::RequestFailures), 1);
        assert_eq!(
            COUNTERS.get(Metric::net_error(Source::Cymru, NetErrorKind::Connect)),
            1
        );
        assert_eq!(rows.iter().map(|r| r.ip).collect::<Vec<_>>(), ips);
        assert!(rows.iter().all(|r| r.outcome == Outcome::Failed
            && r.detail.as_deref().unwrap().contains("cannot connect")));
    }

    /// What every row must be, whatever the servers sent: clean, bounded, storable.
    fn assert_storable(rows: &[Row]) {
        for r in rows {
            if let Some(a) = &r.answer {
                assert!(sanitize::json_is_clean(a, sanitize::MAX_NAME), "{a}");
                if let Some(asn) = a.get("asn").filter(|v| !v.is_null()) {
                    assert!(asn.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)));
                }
                if let Some(p) = a.get("prefix").and_then(Value::as_str) {
                    assert_eq!(
                        sanitize::prefix(p).map(|n| n.to_string()).as_deref(),
                        Some(p)
                    );
                }
            }
            if let Some(d) = &r.detail {
                assert!(sanitize::is_clean(d, 4 * sanitize::MAX_DETAIL), "{d:?}");
                assert!(d.chars().count() <= sanitize::MAX_DETAIL);
            }
        }
    }

    /// Serves `replies` (raw bytes), one per connection, then stops.
    fn tcp_server(replies: Vec<Vec<u8>>) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for reply in replies {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                // The request (whois: ends with "end\n"; HTTP: with an empty line).
                let mut got = Vec::new();
                while !(got.ends_with(b"end\n") || got.ends_with(b"\r\n\r\n")) {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(&reply);
            }
        });
        port
    }

    /// Issue 15, item 4: a NUL (or invalid UTF-8, or a huge number) in one whois line fails
    /// or sanitizes that address only; the batch is stored.
    #[test]
    fn hostile_whois_lines_affect_their_address_only() {
        let reply = b"Bulk mode; whois.cymru.com [2024-05-01 10:00:00 +0000]\n\
            15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2023-12-28 | GOOGLE\x00EVIL\n\
            13335 | 1.1.1.1 | 1.1.1.1/24 | US | arin | 2011-11-01 | \xff\xfe\n\
            99999999999 | 9.9.9.9 | 9.9.9.0/24 | US | arin | 2000-01-01 | HUGE\x00\n";
        let port = tcp_server(vec![reply.to_vec()]);
        let ips: Vec<IpAddr> = ["1.1.1.1", "8.8.8.8", "9.9.9.9"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let job = Job::Cymru(CymruJob {
            mode: CymruMode::Whois {
                host: "127.0.0.1".into(),
                port,
                batch_size: 10,
            },
            timeout: Duration::from_secs(2),
            concurrency: 1,
        });
        let (rows, _) = drain(start(job, ips, Cancel::new(), None).unwrap());
        assert_storable(&rows);
        let outcomes: Vec<_> = rows.iter().map(|r| r.outcome).collect();
        assert_eq!(outcomes, [Outcome::Found, Outcome::Found, Outcome::Failed]);
        let answer = |i: usize| rows[i].answer.as_ref().unwrap();
        assert_eq!(answer(1)["as_name"], "GOOGLE\u{FFFD}EVIL");
        assert_eq!(answer(0)["prefix"], "1.1.1.0/24");
        assert_eq!(answer(0)["as_name"], "\u{FFFD}\u{FFFD}");
        let d = rows[2].detail.as_deref().unwrap();
        assert!(
            d.contains("unreadable line(s), e.g. \"99999999999 | 9.9.9.9"),
            "{d}"
        );
    }

    fn http(status: &str, extra: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// Issue 15, items 4 and 5: a NUL in a GreyNoise name is stored sanitized; a 429 with a
    /// Retry-After in the year 9999 pauses GreyNoise for MAX_RETRY_AFTER (it panicked the
    /// network thread: no row, no pause, quota spent).
    #[test]
    fn greynoise_nul_names_and_huge_retry_after_dates() {
        static WORD: AtomicU64 = AtomicU64::new(0);
        static PAUSE: AtomicI64 = AtomicI64::new(0);
        let port = tcp_server(vec![
            http(
                "200 OK",
                "",
                r#"{"noise":true,"riot":false,"name":"evil\u0000name","last_seen":"99999-12-31"}"#,
            ),
            http(
                "429 Too Many Requests",
                "Retry-After: Fri, 31 Dec 9999 23:59:59 GMT\r\n",
                "",
            ),
        ]);
        let job = |ips: &[&str]| {
            let job = Job::GreyNoise(GreyNoiseJob {
                base_url: format!("http://127.0.0.1:{port}"),
                key: None,
                timeout: Duration::from_secs(2),
                concurrency: 1,
                quota: Quota::new(&WORD, 100),
                paused_until: &PAUSE,
                clock: None,
            });
            let ips = ips.iter().map(|s| s.parse().unwrap()).collect();
            drain(start(job, ips, Cancel::new(), None).unwrap()).0
        };
        let rows = job(&["71.6.135.131"]);
        assert_storable(&rows);
        assert_eq!(rows[0].outcome, Outcome::Found);
        let a = rows[0].answer.as_ref().unwrap();
        assert_eq!(a["name"], "evil\u{FFFD}name");
        assert_eq!(a.get("last_seen"), None);

        let rows = job(&["1.2.3.4", "1.2.3.5", "1.2.3.6"]);
        assert_storable(&rows);
        assert_eq!(rows.len(), 3, "a row for every address");
        assert_eq!(rows[0].outcome, Outcome::Failed);
        assert!(rows[1..].iter().all(|r| r.outcome == Outcome::Skipped));
        let left = greynoise::paused_for(&PAUSE, SystemTime::now()).expect("paused");
        assert!(
            left <= greynoise::MAX_RETRY_AFTER
                && left >= greynoise::MAX_RETRY_AFTER - Duration::from_secs(60),
            "{left:?}"
        );
        assert_eq!(
            Quota::new(&WORD, 100).used(greynoise::utc_day(SystemTime::now())),
            2,
            "one call per answer"
        );
    }

    /// A DNS server on loopback answering TXT and PTR questions from `answer(name)`.
    fn dns_server(answer: fn(&str) -> Vec<RData>) -> SocketAddr {
        use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
        use hickory_proto::rr::Record;
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                m.metadata.response_code = ResponseCode::NoError;
                m.add_queries(q.queries.clone());
                let name = q.queries[0].name().clone();
                for d in answer(&name.to_ascii()) {
                    m.add_answer(Record::from_rdata(name.clone(), 60, d));
                }
                s.send_to(&m.to_vec().unwrap(), from).unwrap();
            }
        });
        addr
    }

    /// Found by review: an origin TXT record saying `NA` (not announced) panicked the DNS
    /// worker (`origin.asns[0]`): the address got no row at all. Hostile text in TXT and
    /// PTR records is stored clean.
    #[test]
    fn dns_mode_na_origins_and_hostile_records() {
        use hickory_proto::rr::rdata::{PTR, TXT};
        use hickory_proto::rr::Name;
        let server = dns_server(|name| match name {
            "1.0.0.10.origin.asn.cymru.com." => {
                vec![RData::TXT(TXT::new(vec!["NA | NA | NA | NA | NA".into()]))]
            }
            "2.0.0.10.origin.asn.cymru.com." => vec![RData::TXT(TXT::from_bytes(vec![
                b"64500 | 10.0.0.0/8 | ZZ | r\x00ir | 2000-01-01",
            ]))],
            "AS64500.asn.cymru.com." => vec![RData::TXT(TXT::from_bytes(vec![
                b"64500 | ZZ | rir | 2000-01-01 | EVIL\x00\xffNAME",
            ]))],
            "3.0.0.10.origin.asn.cymru.com." => vec![RData::TXT(TXT::new(vec![
                "64500 | 192.0.2.0/24 | ZZ | rir | 2000-01-01".into(),
            ]))],
            "4.0.0.10.in-addr.arpa." => vec![RData::PTR(PTR(Name::from_labels(vec![
                hickory_proto::rr::domain::Label::from_raw_bytes(b"a\x00b").unwrap(),
            ])
            .unwrap()))],
            _ => vec![],
        });
        let ips: Vec<IpAddr> = (1..=3).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let job = Job::Cymru(CymruJob {
            mode: CymruMode::Dns { server },
            timeout: Duration::from_secs(2),
            concurrency: 2,
        });
        let (rows, _) = drain(start(job, ips, Cancel::new(), None).unwrap());
        assert_storable(&rows);
        assert_eq!(rows.len(), 3, "a row for every address");
        assert_eq!(rows[0].outcome, Outcome::NotFound);
        assert_eq!(rows[0].answer.as_ref().unwrap()["asn"], Value::Null);
        assert_eq!(rows[1].outcome, Outcome::Found);
        let a = rows[1].answer.as_ref().unwrap();
        assert_eq!(
            (a["asn"].as_u64(), a["registry"].as_str()),
            (Some(64500), Some("r\u{FFFD}ir"))
        );
        assert_eq!(a["as_name"], "EVIL\u{FFFD}\u{FFFD}NAME");
        assert_eq!(
            rows[2].outcome,
            Outcome::Failed,
            "a prefix elsewhere is a lie"
        );

        let job = Job::Rdns(RdnsJob {
            server,
            timeout: Duration::from_secs(2),
            concurrency: 1,
        });
        let (rows, _) =
            drain(start(job, vec![IpAddr::from([10, 0, 0, 4])], Cancel::new(), None).unwrap());
        assert_storable(&rows);
        assert_eq!(rows[0].answer.as_ref().unwrap()["name"], "a\\000b");
    }

    #[test]
    fn greynoise_skips_ipv6_and_respects_quota_without_calling() {
        static WORD: AtomicU64 = AtomicU64::new(0);
        static PAUSE: AtomicI64 = AtomicI64::new(0);
        let quota = Quota::new(&WORD, 0);
        let job = Job::GreyNoise(GreyNoiseJob {
            // Nothing listens there: any call would fail, so skipped rows prove no call.
            base_url: "http://127.0.0.1:9".into(),
            key: None,
            timeout: Duration::from_millis(200),
            concurrency: 3,
            quota,
            paused_until: &PAUSE,
            clock: None,
        });
        let ips: Vec<IpAddr> = vec!["1.2.3.4".parse().unwrap(), "2001:4860::1".parse().unwrap()];
        static COUNTERS: Counters = Counters::new();
        let (rows, _) = drain(start(job, ips, Cancel::new(), Some(&COUNTERS)).unwrap());
        let gn = |m| COUNTERS.get(Metric::source(Source::GreyNoise, m));
        assert_eq!(gn(SourceMetric::Requests), 0);
        assert_eq!(
            COUNTERS.get(Metric::net_error(
                Source::GreyNoise,
                NetErrorKind::QuotaExhausted
            )),
            1
        );
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.outcome == Outcome::Skipped));
        assert!(rows[0].detail.as_deref().unwrap().contains("quota"));
        assert!(rows[0].answer.is_none(), "a quota skip leaves the row due");
        assert!(rows[1].detail.as_deref().unwrap().contains("IPv4 only"));
        assert!(rows[1].answer.is_some(), "an IPv6 skip is stored");
    }
}
