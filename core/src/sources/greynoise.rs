//! GreyNoise Community API: `GET {base}/v3/community/{ip}` with the API key in the `key`
//! header; the answer's meaning by status; the daily quota, counted in one atomic word.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::net::NetError;
use crate::sanitize;

/// The fields of an answer that are kept (`enrichment->'greynoise'`).
pub const KEPT_FIELDS: [&str; 7] = [
    "noise",
    "riot",
    "classification",
    "name",
    "link",
    "last_seen",
    "message",
];

/// Larger answers are not GreyNoise Community answers (they are a few hundred bytes).
pub const BODY_LIMIT: u64 = 64 * 1024;

/// What one call says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200: GreyNoise knows the address (noise and/or RIOT).
    Observed(Value),
    /// 404 with an answer body: GreyNoise has not observed the address — a real answer.
    NotObserved(Value),
    /// 401/403: the key is wrong; no further call can succeed.
    Unauthorized(u16),
    /// 429: stop calling until the time given by Retry-After.
    RateLimited(Duration),
    /// Anything else: recorded, retried next run.
    Failed(NetError),
}

/// Without Retry-After (or an unreadable one), wait this long after a 429.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A Retry-After longer than this is taken as this (a day: the quota resets by then).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

pub fn community_url(base: &str, ip: Ipv4Addr) -> String {
    format!("{}/v3/community/{ip}", base.trim_end_matches('/'))
}

/// The meaning of an HTTP answer for `ip`.
pub fn interpret(
    ip: Ipv4Addr,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Reply {
    match status {
        200 | 404 => match kept_fields(ip, body) {
            Ok(answer) if status == 200 => {
                if answer.get("noise").is_some_and(Value::is_boolean)
                    && answer.get("riot").is_some_and(Value::is_boolean)
                {
                    Reply::Observed(answer)
                } else {
                    Reply::Failed(NetError::Protocol(
                        "answer without noise and riot flags".into(),
                    ))
                }
            }
            // A 404 is an answer only when it says so (noise present); a bare 404 is a
            // wrong URL or a proxy's page.
            Ok(answer) if answer.get("noise").is_some_and(Value::is_boolean) => {
                Reply::NotObserved(answer)
            }
            Ok(_) => Reply::Failed(NetError::Server(
                "HTTP 404 without a GreyNoise answer".into(),
            )),
            Err(e) => Reply::Failed(e),
        },
        401 | 403 => Reply::Unauthorized(status),
        429 => Reply::RateLimited(
            retry_after
                .and_then(|v| parse_retry_after(v, now))
                .unwrap_or(DEFAULT_RETRY_AFTER),
        ),
        s => Reply::Failed(NetError::Server(format!("HTTP {s}"))),
    }
}

fn kept_fields(ip: Ipv4Addr, body: &[u8]) -> Result<Value, NetError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| NetError::Protocol(format!("not JSON: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(NetError::Protocol("not a JSON object".into()));
    };
    if let Some(answered) = obj.get("ip") {
        if answered.as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()) != Some(ip) {
            return Err(NetError::Protocol(format!(
                "answer about another address ({})",
                sanitize::quote(&answered.to_string())
            )));
        }
    }
    for flag in ["noise", "riot"] {
        if obj.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(NetError::Protocol(format!("{flag} is not true or false")));
        }
    }
    // Each kept field with the type it must have: the flags as they are (checked above),
    // texts sanitized, `last_seen` only as a plausible date. A field of another type (an
    // object where a name should be, a date of year 99999) is omitted; the rest of the
    // answer stands.
    let mut kept = Map::new();
    for key in KEPT_FIELDS {
        let value = match (key, obj.get(key)) {
            (_, None) => continue,
            (_, Some(Value::Null)) => Value::Null,
            ("noise" | "riot", Some(v)) => v.clone(),
            ("last_seen", Some(Value::String(d))) => match sanitize::date(d) {
                Some(d) => Value::String(d),
                None => continue,
            },
            ("last_seen", Some(_)) => continue,
            (_, Some(Value::String(t))) => Value::String(sanitize::text(t, sanitize::MAX_NAME)),
            (_, Some(_)) => continue,
        };
        kept.insert(key.to_owned(), value);
    }
    Ok(Value::Object(kept))
}

/// `Retry-After`: delta-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as a
/// wait of at most [`MAX_RETRY_AFTER`]; `None` when unreadable (the caller waits
/// [`DEFAULT_RETRY_AFTER`]). Any value gives a bounded wait and never panics: a date in the
/// year 9999 or a delta of 2^64 seconds is a long wait, that is [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    let wait = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than 64 bits hold is still a number of seconds: a very long one.
        v.parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = parse_http_date(v)?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn parse_http_date(v: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(parts[1], 2) || !digits(parts[3], 4) {
        return None;
    }
    let day: u32 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = u32::try_from(MONTHS.iter().position(|m| *m == parts[2])?).ok()? + 1;
    // Four digits: 0000-9999, so the day count below cannot overflow.
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4]
        .split(':')
        .map(|x| digits(x, 2).then(|| x.parse().ok()).flatten())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else {
        return None;
    };
    if h > 23 || m > 59 || s > 60 || !(1..=31).contains(&day) {
        return None;
    }
    let secs = days_from_civil(year, month, day)
        .checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + s)?;
    let offset = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Today's number as the quota counts days: UTC days since 1970 (GreyNoise resets its
/// quota at midnight UTC).
pub fn utc_day(now: SystemTime) -> u32 {
    u32::try_from(now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 86_400)
        .unwrap_or(u32::MAX)
}

/// The UTC day of a time given in seconds since 1970.
pub fn utc_day_of(secs: u64) -> u32 {
    u32::try_from(secs / 86_400).unwrap_or(u32::MAX)
}

/// How many GreyNoise calls a scheduled run may make so that the calls left today last
/// until midnight UTC: the calls left divided by the runs left today, this one included
/// (`interval_secs` apart), rounded down. The last run of the day may take all that is
/// left; a run that finds the quota ahead of its pace takes a bigger share, one behind it a
/// smaller one, so manual runs in between are absorbed over the rest of the day.
pub fn paced_share(remaining: u32, now_secs: u64, interval_secs: u32) -> u32 {
    let left_today = 86_400 - now_secs % 86_400;
    let runs_left = left_today.div_ceil(u64::from(interval_secs.max(1))).max(1);
    u32::try_from(u64::from(remaining) / runs_left).unwrap_or(u32::MAX)
}

/// The daily quota, kept in one 64-bit word (day << 32 | calls made that day) so that any
/// thread of any backend claims a call with a single compare-and-swap: the count can never
/// pass the limit, however many refreshers run at once.
#[derive(Clone, Copy)]
pub struct Quota<'a> {
    word: &'a AtomicU64,
    limit: u32,
}

fn unpack(w: u64) -> (u32, u32) {
    ((w >> 32) as u32, w as u32)
}

fn pack(day: u32, used: u32) -> u64 {
    (u64::from(day) << 32) | u64::from(used)
}

impl<'a> Quota<'a> {
    pub fn new(word: &'a AtomicU64, limit: u32) -> Self {
        Quota { word, limit }
    }

    /// Claims one call on `day`; false when the day's quota is used up.
    pub fn try_claim(&self, day: u32) -> bool {
        self.word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                let (d, used) = unpack(w);
                let used = if d == day { used } else { 0 };
                (used < self.limit).then(|| pack(day, used + 1))
            })
            .is_ok()
    }

    /// Calls made on `day`.
    pub fn used(&self, day: u32) -> u32 {
        let (d, used) = unpack(self.word.load(Ordering::Acquire));
        if d == day {
            used
        } else {
            0
        }
    }

    pub fn remaining(&self, day: u32) -> u32 {
        self.limit.saturating_sub(self.used(day))
    }

    /// Raises the count of `day` to at least `used` (after a restart, from the count saved
    /// in the database); never lowers it.
    pub fn seed(&self, day: u32, used: u32) {
        let _ = self
            .word
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                let (d, u) = unpack(w);
                match d.cmp(&day) {
                    std::cmp::Ordering::Less => Some(pack(day, used)),
                    std::cmp::Ordering::Equal if u < used => Some(pack(day, used)),
                    _ => None,
                }
            });
    }
}

/// Seconds since 1970 (negative before), saturating.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// How long calls stay paused (`paused_until`: seconds since 1970 before which no call is
/// made, the last 429's Retry-After). A pause never lasts more than [`MAX_RETRY_AFTER`] from
/// now: a later time (the clock was set back, or a bad value was stored) is brought back.
pub fn paused_for(paused_until: &AtomicI64, now: SystemTime) -> Option<Duration> {
    let now = unix_seconds(now);
    let latest = now.saturating_add(MAX_RETRY_AFTER.as_secs() as i64);
    let mut until = paused_until.load(Ordering::Acquire);
    if until > latest {
        paused_until.fetch_min(latest, Ordering::AcqRel);
        until = latest;
    }
    let left = until.checked_sub(now)?;
    (left > 0).then(|| Duration::from_secs(left.unsigned_abs()))
}

/// Pauses calls for `wait` (at most [`MAX_RETRY_AFTER`]) from `now`; never shortens a
/// pause already recorded.
pub fn pause(paused_until: &AtomicI64, now: SystemTime, wait: Duration) {
    let wait = wait.min(MAX_RETRY_AFTER).as_secs() as i64;
    let until = unix_seconds(now).saturating_add(wait);
    paused_until.fetch_max(until, Ordering::AcqRel);
}

/// An HTTP client for one refresh run.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
}

impl Client {
    pub fn new(base: &str, key: Option<String>, timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("ip_inventory/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            base: base.to_owned(),
            key,
        }
    }

    pub fn lookup(&self, ip: Ipv4Addr) -> Reply {
        let mut request = self
            .agent
            .get(community_url(&self.base, ip))
            .header("Accept", "application/json");
        if let Some(key) = &self.key {
            request = request.header("key", key.as_str());
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => return Reply::Failed(http_error(e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
        {
            Ok(b) => b,
            // The status alone decides these.
            Err(_) if matches!(status, 401 | 403 | 429) || status >= 500 => Vec::new(),
            Err(e) => return Reply::Failed(http_error(e)),
        };
        interpret(ip, status, retry_after.as_deref(), &body, SystemTime::now())
    }
}

fn http_error(e: ureq::Error) -> NetError {
    // ureq's messages name the URL at most, never a request header (the key).
    match e {
        ureq::Error::Timeout(_) => {
            NetError::Timeout("no complete answer within the time limit".into())
        }
        ureq::Error::BodyExceedsLimit(n) => NetError::Oversized(n as usize),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            NetError::Connect(e.to_string())
        }
        ureq::Error::Io(io) => super::net::io_error(io),
        other => NetError::Io(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    const IP: Ipv4Addr = Ipv4Addr::new(71, 6, 135, 131);

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn answers_by_status() {
        let body = br#"{"ip":"71.6.135.131","noise":true,"riot":false,"classification":"benign","name":"Shodan.io","link":"https://viz.greynoise.io/ip/71.6.135.131","last_seen":"2024-05-01","message":"Success","extra":1}"#;
        let Reply::Observed(v) = interpret(IP, 200, None, body, now()) else {
            panic!()
        };
        assert_eq!(v["noise"], true);
        assert_eq!(v["name"], "Shodan.io");
        assert_eq!(v.as_object().unwrap().len(), 7, "only the kept fields: {v}");

        let nf = br#"{"ip":"71.6.135.131","noise":false,"riot":false,"message":"IP not observed scanning the internet or contained in RIOT data set."}"#;
        let Reply::NotObserved(v) = interpret(IP, 404, None, nf, now()) else {
            panic!()
        };
        assert_eq!(v["noise"], false);
        assert!(matches!(
            interpret(IP, 404, None, b"<html>Not Found</html>", now()),
            Reply::Failed(_)
        ));
        assert!(matches!(
            interpret(IP, 404, None, br#"{"message":"no route"}"#, now()),
            Reply::Failed(_)
        ));
        assert_eq!(
            interpret(IP, 401, None, b"", now()),
            Reply::Unauthorized(401)
        );
        assert_eq!(
            interpret(IP, 429, Some("120"), b"", now()),
            Reply::RateLimited(Duration::from_secs(120))
        );
        assert_eq!(
            interpret(IP, 429, None, b"", now()),
            Reply::RateLimited(DEFAULT_RETRY_AFTER)
        );
        assert_eq!(
            interpret(IP, 500, None, b"", now()),
            Reply::Failed(NetError::Server("HTTP 500".into()))
        );
        // Lies and garbage.
        assert!(matches!(
            interpret(IP, 200, None, b"{not json", now()),
            Reply::Failed(NetError::Protocol(_))
        ));
        assert!(matches!(
            interpret(IP, 200, None, br#"[1,2]"#, now()),
            Reply::Failed(NetError::Protocol(_))
        ));
        assert!(matches!(
            interpret(
                IP,
                200,
                None,
                br#"{"ip":"1.1.1.1","noise":true,"riot":false}"#,
                now()
            ),
            Reply::Failed(NetError::Protocol(_))
        ));
        assert!(matches!(
            interpret(IP, 200, None, br#"{"noise":"yes","riot":false}"#, now()),
            Reply::Failed(NetError::Protocol(_))
        ));
        assert!(matches!(
            interpret(IP, 200, None, br#"{"message":"ok"}"#, now()),
            Reply::Failed(_)
        ));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after(" 30 ", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("99999999", now()), Some(MAX_RETRY_AFTER));
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    /// Issue 15: a NUL in a GreyNoise answer made every refresh fail with 22P05 (jsonb cannot
    /// hold \u0000). Every kept string is clean now; absurd fields are omitted.
    #[test]
    fn hostile_bodies_are_sanitized_or_fail_for_their_address() {
        let body = format!(
            r#"{{"ip":"71.6.135.131","noise":true,"riot":false,"name":"evil\u0000name","classification":"\u001b[31mmalicious\u202e","link":"{}","last_seen":"99999-01-01","message":{{"nested":"\u0000"}}}}"#,
            "x".repeat(10_000)
        );
        let Reply::Observed(v) = interpret(IP, 200, None, body.as_bytes(), now()) else {
            panic!()
        };
        assert_eq!(v["name"], "evil\u{FFFD}name");
        assert_eq!(v["classification"], "\u{FFFD}[31mmalicious\u{FFFD}");
        assert!(v["link"].as_str().unwrap().len() <= sanitize::MAX_NAME);
        assert_eq!(v.get("last_seen"), None, "a date of year 99999 is omitted");
        assert_eq!(
            v.get("message"),
            None,
            "an object where a text belongs is omitted"
        );
        assert!(sanitize::json_is_clean(&v, sanitize::MAX_NAME), "{v}");
        let good_date = br#"{"noise":false,"riot":false,"last_seen":"2024-05-01","name":null}"#;
        let Reply::NotObserved(v) = interpret(IP, 404, None, good_date, now()) else {
            panic!()
        };
        assert_eq!(
            (v["last_seen"].as_str(), v["name"].is_null()),
            (Some("2024-05-01"), true)
        );

        // Invalid UTF-8 is no JSON: a failure for this address, with a clean text.
        let r = interpret(
            IP,
            200,
            None,
            b"{\"noise\":true,\"riot\":false,\"name\":\"\xff\"}",
            now(),
        );
        assert!(matches!(r, Reply::Failed(NetError::Protocol(_))), "{r:?}");
        // An answer about another address quotes it, bounded and clean.
        let other = format!(
            r#"{{"ip":"\u0000{}","noise":true,"riot":false}}"#,
            "9".repeat(500)
        );
        let Reply::Failed(e) = interpret(IP, 200, None, other.as_bytes(), now()) else {
            panic!()
        };
        let e = e.to_string();
        assert!(
            sanitize::is_clean(&e, 400) && e.chars().count() < 120,
            "{e}"
        );
    }

    /// Issue 15: a Retry-After date far in the future panicked the network thread
    /// ("overflow when adding duration to instant"). Every value now gives a wait of at most
    /// MAX_RETRY_AFTER, or None (the default wait).
    #[test]
    fn huge_and_garbage_retry_after_values_give_bounded_waits() {
        for huge in [
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "9223372036854775808",            // 2^63
            "18446744073709551615",           // u64::MAX
            "184467440737095516160000000000", // beyond 64 bits
        ] {
            assert_eq!(
                parse_retry_after(huge, now()),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
            assert_eq!(
                interpret(IP, 429, Some(huge), b"", now()),
                Reply::RateLimited(MAX_RETRY_AFTER)
            );
        }
        for garbage in [
            "-1",
            "-9223372036854775808",
            "+30",
            "1.5",
            "",
            "Fri, 31 Dec 99999 23:59:59 GMT",
            "Fri, 31 Dec 999999999999999999 23:59:59 GMT",
            // fuzz/regressions/greynoise/retry-after-year-17-digits: what the fuzzer found
            // on the old code (overflow in the day arithmetic).
            "Fr, 31 Jan 99999999999999999 23:59:59 GMT",
            "Fri, 31 Dec -9999 23:59:59 GMT",
            "Fri, 99 Dec 2023 23:59:59 GMT",
            "Fri, 31 Dec 2023 99:99:99 GMT",
            "Fri, 31 Dec 2023 23:59 GMT",
            "Fri, 31 Foo 2023 23:59:59 GMT",
            "Fri, 31 Dec 2023 23:59:59 UTC",
            "\u{0}",
        ] {
            assert_eq!(parse_retry_after(garbage, now()), None, "{garbage:?}");
            assert_eq!(
                interpret(IP, 429, Some(garbage), b"", now()),
                Reply::RateLimited(DEFAULT_RETRY_AFTER),
                "{garbage:?}"
            );
        }
        // A date long past means now; so does the epoch's first day, and the year 0000.
        for past in [
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Mon, 01 Jan 0000 00:00:00 GMT",
        ] {
            assert_eq!(
                parse_retry_after(past, now()),
                Some(Duration::ZERO),
                "{past}"
            );
        }
        // Whatever "now" is, too (a clock far off).
        let far = UNIX_EPOCH + Duration::from_secs(400 * 365 * 86_400);
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", far),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn pauses_are_bounded_whatever_is_asked_or_stored() {
        let p = AtomicI64::new(0);
        pause(&p, now(), Duration::MAX);
        assert_eq!(paused_for(&p, now()), Some(MAX_RETRY_AFTER));
        // A stored time beyond MAX from now (clock set back, garbage) is brought back.
        let p = AtomicI64::new(i64::MAX);
        assert_eq!(paused_for(&p, now()), Some(MAX_RETRY_AFTER));
        assert_eq!(
            p.load(Ordering::Acquire),
            1_700_000_000 + MAX_RETRY_AFTER.as_secs() as i64
        );
        let p = AtomicI64::new(i64::MIN);
        assert_eq!(paused_for(&p, now()), None);
        // Clocks at the ends of SystemTime's range.
        let p = AtomicI64::new(0);
        let late = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2);
        pause(&p, late, MAX_RETRY_AFTER);
        assert!(paused_for(&p, late).is_some());
        let early = UNIX_EPOCH - Duration::from_secs(1_000_000);
        assert_eq!(paused_for(&p, early), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn quota_is_never_exceeded_by_concurrent_claimers() {
        let word = Box::leak(Box::new(AtomicU64::new(0)));
        let q = Quota::new(word, 1000);
        let day = 19_000;
        let granted: u32 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(move || (0..500).filter(|_| q.try_claim(day)).count() as u32))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 1000);
        assert_eq!(q.used(day), 1000);
        assert_eq!(q.remaining(day), 0);
        // A new day starts from zero.
        assert!(q.try_claim(day + 1));
        assert_eq!(q.used(day + 1), 1);
        assert_eq!(q.used(day), 0);
    }

    #[test]
    fn quota_seed_only_raises() {
        let word = AtomicU64::new(0);
        let q = Quota::new(&word, 10);
        q.seed(5, 7);
        assert_eq!(q.used(5), 7);
        q.seed(5, 3);
        assert_eq!(q.used(5), 7);
        q.seed(4, 9);
        assert_eq!(q.used(5), 7);
        assert!(q.try_claim(5) && q.try_claim(5) && q.try_claim(5));
        assert!(!q.try_claim(5));
        assert_eq!(utc_day(UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 5)), 3);
    }

    #[test]
    fn pacing_spreads_the_quota_over_the_rest_of_the_day() {
        let day0 = 20_000 * 86_400;
        // Every ten minutes from midnight: 144 runs, 69 calls each at first.
        assert_eq!(paced_share(10_000, day0, 600), 69);
        // A few seconds late is the same run.
        assert_eq!(paced_share(10_000, day0 + 7, 600), 69);
        // The last run of the day takes what is left.
        assert_eq!(paced_share(1_234, day0 + 86_400 - 600, 600), 1_234);
        assert_eq!(paced_share(1_234, day0 + 86_399, 600), 1_234);
        assert_eq!(paced_share(0, day0 + 3_600, 600), 0);
        // Fewer calls left than runs: nothing until the runs left are as few as the calls.
        assert_eq!(paced_share(10, day0, 600), 0);
        assert_eq!(paced_share(10, day0 + 86_400 - 6_000, 600), 1);
        // A zero interval is one run per second, never a division by zero.
        assert_eq!(paced_share(86_400, day0, 0), 1);
        // Simulated day, runs every ten minutes: never more than the quota, all of it used,
        // and no hour spends much more than its share.
        let (quota, mut used) = (10_000u32, 0u32);
        let mut per_hour = [0u32; 24];
        for run in 0..144u64 {
            let share = paced_share(quota - used, day0 + run * 600, 600);
            used += share;
            per_hour[(run / 6) as usize] += share;
        }
        assert_eq!(used, quota);
        assert!(
            per_hour.iter().all(|&h| (400..=440).contains(&h)),
            "{per_hour:?}"
        );
        assert_eq!(utc_day_of(day0 + 86_399), 20_000);
        assert_eq!(utc_day_of(day0 + 86_400), 20_001);
    }

    #[test]
    fn pause_keeps_the_latest_time() {
        let p = AtomicI64::new(0);
        assert_eq!(paused_for(&p, now()), None);
        pause(&p, now(), Duration::from_secs(60));
        pause(&p, now(), Duration::from_secs(10));
        assert_eq!(paused_for(&p, now()), Some(Duration::from_secs(60)));
        assert_eq!(paused_for(&p, now() + Duration::from_secs(61)), None);
    }

    /// Serves one canned HTTP answer per connection; returns the port and the request heads.
    fn http_server(
        answers: Vec<(String, Duration)>,
    ) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for (answer, drip) in answers {
                let (mut s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                        break;
                    }
                    head.push_str(&l);
                }
                heads.push(head);
                if drip.is_zero() {
                    let _ = s.write_all(answer.as_bytes());
                } else {
                    for b in answer.as_bytes() {
                        if s.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(drip);
                    }
                }
            }
            heads
        });
        (port, h)
    }

    fn response(status: &str, extra: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}", body.len())
    }

    #[test]
    fn client_sends_the_key_and_reads_each_status() {
        let ok = r#"{"ip":"71.6.135.131","noise":true,"riot":false,"classification":"benign","name":"Shodan.io","link":"x","last_seen":"2024-05-01","message":"Success"}"#;
        let (port, h) = http_server(vec![
            (response("200 OK", "", ok), Duration::ZERO),
            (
                response("429 Too Many Requests", "Retry-After: 7\r\n", "{}"),
                Duration::ZERO,
            ),
            (response("503 Service Unavailable", "", ""), Duration::ZERO),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"no".to_owned(),
                Duration::ZERO,
            ),
        ]);
        let c = Client::new(
            &format!("http://127.0.0.1:{port}/"),
            Some("s3cret".into()),
            Duration::from_secs(2),
        );
        assert!(matches!(c.lookup(IP), Reply::Observed(_)));
        assert_eq!(c.lookup(IP), Reply::RateLimited(Duration::from_secs(7)));
        assert_eq!(
            c.lookup(IP),
            Reply::Failed(NetError::Server("HTTP 503".into()))
        );
        let cut = c.lookup(IP);
        assert!(matches!(cut, Reply::Failed(_)), "{cut:?}");
        let heads = h.join().unwrap();
        assert!(
            heads[0].starts_with("GET /v3/community/71.6.135.131 HTTP/1.1\r\n"),
            "{}",
            heads[0]
        );
        assert!(heads[0].to_ascii_lowercase().contains("key: s3cret\r\n"));
    }

    #[test]
    fn a_slow_drip_is_cut_by_the_timeout() {
        let body = format!(
            "{{\"noise\":false,\"riot\":false,\"message\":\"{}\"}}",
            "x".repeat(200)
        );
        let (port, h) = http_server(vec![(
            response("200 OK", "", &body),
            Duration::from_millis(20),
        )]);
        let c = Client::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_millis(500),
        );
        let t = std::time::Instant::now();
        let r = c.lookup(IP);
        assert!(matches!(r, Reply::Failed(NetError::Timeout(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(2));
        let heads = h.join().unwrap();
        assert!(
            !heads[0].to_ascii_lowercase().contains("key:"),
            "no key header without a key"
        );
    }

    #[test]
    fn oversized_answers_fail() {
        let body = format!(
            "{{\"noise\":false,\"riot\":false,\"message\":\"{}\"}}",
            "x".repeat(100_000)
        );
        let (port, h) = http_server(vec![(response("200 OK", "", &body), Duration::ZERO)]);
        let c = Client::new(
            &format!("http://127.0.0.1:{port}"),
            None,
            Duration::from_secs(2),
        );
        assert!(matches!(
            c.lookup(IP),
            Reply::Failed(NetError::Oversized(_))
        ));
        h.join().unwrap();
    }
}
