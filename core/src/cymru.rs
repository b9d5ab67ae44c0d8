//! Team Cymru IP-to-ASN mapping: the bulk whois protocol (TCP port 43) and the DNS zones
//! (`origin.asn.cymru.com`, `origin6.asn.cymru.com`, `asn.cymru.com`).
//!
//! Bulk whois sends many addresses over one connection (Cymru null-routes clients that open
//! one connection per address):
//! ```text
//! begin
//! verbose
//! 8.8.8.8
//! end
//! ```
//! and answers one line per address (several when several ASes originate the prefix):
//! ```text
//! Bulk mode; whois.cymru.com [2024-05-01 10:00:00 +0000]
//! AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name
//! 15169   | 8.8.8.8          | 8.8.8.0/24          | US | arin     | 2023-12-28 | GOOGLE, US
//! NA      | 10.1.2.3         | NA                  | NA | NA       | NA         | NA
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::net::{self, Cancel, Deadline, NetError};
use crate::sanitize;

/// Cymru's answer for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Origin ASes, in the order given; empty when the address is not announced (`NA`).
    pub asns: Vec<u32>,
    pub prefix: Option<String>,
    pub country: Option<String>,
    pub registry: Option<String>,
    pub allocated: Option<String>,
    pub as_name: Option<String>,
}

impl Answer {
    pub fn is_announced(&self) -> bool {
        !self.asns.is_empty()
    }

    /// The answer as stored in `enrichment->'cymru'`.
    pub fn to_json(&self, mode: &str) -> Value {
        json!({
            "asn": self.asns.first(),
            "asns": self.asns,
            "prefix": self.prefix,
            "country": self.country,
            "registry": self.registry,
            "allocated": self.allocated,
            "as_name": self.as_name,
            "mode": mode,
        })
    }
}

/// A text column (the answer is plaintext: anyone on the path may put anything there).
fn field(v: &str) -> Option<String> {
    let v = sanitize::text(v, sanitize::MAX_NAME);
    (!v.is_empty() && v != "NA").then_some(v)
}

/// A country code: two letters, else omitted.
fn country(v: &str) -> Option<String> {
    let v = v.trim();
    (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic())).then(|| v.to_owned())
}

/// An allocation date: a plausible calendar date, else omitted.
fn allocated(v: &str) -> Option<String> {
    sanitize::date(v)
}

/// Most origin ASes kept for one prefix (real multi-origin prefixes have two or three).
pub const MAX_ORIGINS: usize = 16;

/// `15169`, `AS15169` or `23028 701` (several origins) → ASNs; `NA` → none. Anything beyond
/// 32 bits, or more than [`MAX_ORIGINS`], is not an answer.
fn parse_asns(v: &str) -> Result<Vec<u32>, String> {
    let v = v.trim();
    if v == "NA" {
        return Ok(Vec::new());
    }
    let mut asns = Vec::new();
    for a in v.split_whitespace() {
        let a = a.strip_prefix("AS").unwrap_or(a);
        let asn = a
            .parse::<u32>()
            .map_err(|_| format!("\"{}\" is not an AS number", sanitize::quote(a)))?;
        if !asns.contains(&asn) {
            if asns.len() == MAX_ORIGINS {
                return Err(format!("more than {MAX_ORIGINS} origin ASes"));
            }
            asns.push(asn);
        }
    }
    if asns.is_empty() {
        return Err("no AS number".to_owned());
    }
    Ok(asns)
}

/// A prefix column: `NA`, or a prefix in the canonical form `::cidr` accepts.
fn parse_prefix(v: &str) -> Result<Option<ipnetwork::IpNetwork>, String> {
    let v = v.trim();
    if v.is_empty() || v == "NA" {
        return Ok(None);
    }
    sanitize::prefix(v)
        .map(Some)
        .ok_or_else(|| format!("\"{}\" is not a prefix", sanitize::quote(v)))
}

/// The request for a batch of addresses.
pub fn bulk_request(ips: &[IpAddr]) -> String {
    let mut s = String::with_capacity(20 + ips.len() * 16);
    s.push_str("begin\nverbose\n");
    for ip in ips {
        s.push_str(&ip.to_string());
        s.push('\n');
    }
    s.push_str("end\n");
    s
}

/// A parsed bulk whois reply.
#[derive(Debug, Default)]
pub struct BulkReply {
    pub answers: HashMap<IpAddr, Answer>,
    /// Lines that are neither the banner, the header nor an answer (Cymru's own `Error:`
    /// lines included): the first [`KEPT_BAD_LINES`], sanitized excerpts.
    pub bad_lines: Vec<String>,
    /// How many lines were bad in all.
    pub bad_count: usize,
}

/// Bad lines kept as examples for the failure text.
pub const KEPT_BAD_LINES: usize = 4;

/// Parses a bulk whois reply. Several lines for one address (several origin ASes) merge
/// into one answer; lines for addresses not asked about are ignored by the caller.
pub fn parse_bulk_reply(text: &str) -> BulkReply {
    let mut reply = BulkReply::default();
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() || line.starts_with("Bulk mode;") {
            continue;
        }
        let cols: Vec<&str> = line.splitn(7, '|').collect();
        if cols.len() == 7 && cols[0].trim() == "AS" && cols[1].trim() == "IP" {
            continue; // the column header
        }
        let parsed = parse_line(&cols).and_then(|(ip, answer)| {
            let Some(existing) = reply.answers.get_mut(&ip) else {
                reply.answers.insert(ip, answer);
                return Ok(());
            };
            for asn in answer.asns {
                if !existing.asns.contains(&asn) {
                    if existing.asns.len() == MAX_ORIGINS {
                        return Err(format!("more than {MAX_ORIGINS} origin ASes for {ip}"));
                    }
                    existing.asns.push(asn);
                }
            }
            Ok(())
        });
        if parsed.is_err() {
            reply.bad_count += 1;
            if reply.bad_lines.len() < KEPT_BAD_LINES {
                reply.bad_lines.push(sanitize::quote(line));
            }
        }
    }
    reply
}

fn parse_line(cols: &[&str]) -> Result<(IpAddr, Answer), String> {
    if cols.len() != 7 {
        return Err(format!("{} columns instead of 7", cols.len()));
    }
    let ip: IpAddr = cols[1]
        .trim()
        .parse()
        .map_err(|_| format!("\"{}\" is not an address", sanitize::quote(cols[1])))?;
    let asns = parse_asns(cols[0])?;
    let prefix = parse_prefix(cols[2])?;
    if let Some(net) = prefix {
        if !net.contains(ip) {
            return Err(format!("prefix {net} does not hold {ip}"));
        }
    }
    Ok((
        ip,
        Answer {
            asns,
            prefix: prefix.map(|p| p.to_string()),
            country: country(cols[3]),
            registry: field(cols[4]),
            allocated: allocated(cols[5]),
            as_name: field(cols[6]),
        },
    ))
}

/// The result of one bulk whois exchange: what was answered, and for a broken exchange
/// (timeout, reset, oversized), the error the unanswered addresses fail with.
#[derive(Debug, Default)]
pub struct BulkResult {
    pub answers: HashMap<IpAddr, Answer>,
    pub bad_lines: Vec<String>,
    pub bad_count: usize,
    pub error: Option<NetError>,
}

/// Upper bound of an honest reply: generous per address (long AS names, several origins).
fn reply_limit(n: usize) -> usize {
    8192 + n * 1024
}

/// Asks about a batch of addresses over one connection.
pub fn whois_bulk(
    host: &str,
    port: u16,
    ips: &[IpAddr],
    timeout: Duration,
    cancel: &Cancel,
) -> BulkResult {
    let deadline = Deadline::after(timeout);
    let mut stream = match net::connect(host, port, deadline, cancel) {
        Ok(s) => s,
        Err(error) => {
            return BulkResult {
                error: Some(error),
                ..Default::default()
            }
        }
    };
    let sent = stream
        .set_write_timeout(deadline.remaining().or(Some(Duration::from_millis(1))))
        .and_then(|()| stream.write_all(bulk_request(ips).as_bytes()))
        .and_then(|()| stream.flush());
    if let Err(e) = sent {
        return BulkResult {
            error: Some(net::io_error(e)),
            ..Default::default()
        };
    }
    // The server closes the connection after the last answer; a reply that already answers
    // every address is complete even if the close is late.
    let wanted = ips.len();
    let (bytes, error) =
        net::read_to_end(&mut stream, reply_limit(wanted), deadline, cancel, |b| {
            b.ends_with(b"\n")
                && parse_bulk_reply(&String::from_utf8_lossy(b)).answers.len() >= wanted
        });
    let reply = parse_bulk_reply(&String::from_utf8_lossy(&bytes));
    BulkResult {
        answers: reply.answers,
        bad_lines: reply.bad_lines,
        bad_count: reply.bad_count,
        error,
    }
}

/// Reversed octets (IPv4) or nibbles (IPv6), as DNS reverse zones spell an address.
pub fn reversed_labels(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                }
            }
            s
        }
    }
}

/// The TXT name with the origin of an address: `4.4.8.8.origin.asn.cymru.com.`.
pub fn origin_name(ip: IpAddr) -> String {
    let zone = if ip.is_ipv4() {
        "origin.asn.cymru.com."
    } else {
        "origin6.asn.cymru.com."
    };
    format!("{}.{zone}", reversed_labels(ip))
}

/// The TXT name with the description of an AS: `AS15169.asn.cymru.com.`.
pub fn as_name_query(asn: u32) -> String {
    format!("AS{asn}.asn.cymru.com.")
}

/// Parses an origin TXT record: `15169 | 8.8.8.0/24 | US | arin | 2023-12-28` (the first
/// field may list several origin ASes).
pub fn parse_origin_txt(txt: &str) -> Result<Answer, String> {
    let cols: Vec<&str> = txt.split('|').collect();
    if cols.len() < 3 {
        return Err(format!(
            "\"{}\" is not an origin record",
            sanitize::quote(txt)
        ));
    }
    Ok(Answer {
        asns: parse_asns(cols[0])?,
        prefix: parse_prefix(cols[1])?.map(|p| p.to_string()),
        country: cols.get(2).and_then(|v| country(v)),
        registry: cols.get(3).and_then(|v| field(v)),
        allocated: cols.get(4).and_then(|v| allocated(v)),
        as_name: None,
    })
}

/// The origin of `ip` from the TXT records of its origin name: every record must parse and
/// its prefix hold the address (a record about another network is a lie, or an answer to
/// another question); the most specific one wins ([`best_origin`]). `Ok(None)` for no
/// record.
pub fn origin_of(ip: IpAddr, txts: &[String]) -> Result<Option<Answer>, String> {
    let mut records = Vec::with_capacity(txts.len());
    for txt in txts {
        let record = parse_origin_txt(txt)?;
        if let Some(p) = record.prefix.as_deref() {
            if !sanitize::prefix(p).is_some_and(|net| net.contains(ip)) {
                return Err(format!("prefix {p} does not hold {ip}"));
            }
        }
        records.push(record);
    }
    Ok(best_origin(&records))
}

/// Of several origin records (covering prefixes), the most specific one, with the ASes of
/// all records of that prefix.
pub fn best_origin(records: &[Answer]) -> Option<Answer> {
    let len = |a: &Answer| {
        a.prefix
            .as_deref()
            .and_then(|p| p.parse::<ipnetwork::IpNetwork>().ok())
            .map_or(0, |n| n.prefix())
    };
    // The first of the most specific records (max_by_key keeps the last maximum).
    let best = records.iter().rev().max_by_key(|a| len(a))?;
    let mut merged = best.clone();
    for other in records.iter().filter(|a| a.prefix == best.prefix) {
        for asn in &other.asns {
            if !merged.asns.contains(asn) {
                merged.asns.push(*asn);
            }
        }
    }
    Some(merged)
}

/// Parses an AS TXT record: `15169 | US | arin | 2000-03-30 | GOOGLE, US` → the name.
pub fn parse_as_name_txt(txt: &str) -> Result<(u32, Option<String>), String> {
    let cols: Vec<&str> = txt.splitn(5, '|').collect();
    if cols.len() != 5 {
        return Err(format!("\"{}\" is not an AS record", sanitize::quote(txt)));
    }
    // `NA` parses as no AS at all: not an AS record either.
    let asn = *parse_asns(cols[0])?.first().ok_or("no AS number")?;
    Ok((asn, field(cols[4])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    const REPLY: &str = "Bulk mode; whois.cymru.com [2024-05-01 10:00:00 +0000]\n\
AS      | IP               | BGP Prefix          | CC | Registry | Allocated  | AS Name\n\
15169   | 8.8.8.8          | 8.8.8.0/24          | US | arin     | 2023-12-28 | GOOGLE, US\n\
NA      | 10.1.2.3         | NA                  | NA | NA       | NA         | NA\n\
23028   | 216.90.108.31    | 216.90.108.0/24     | US | arin     | 1998-09-25 | TEAM-CYMRU, US\n\
701     | 216.90.108.31    | 216.90.108.0/24     | US | arin     | 1998-09-25 | UUNET, US\n\
13335   | 2606:4700::1111  | 2606:4700::/32      | US | arin     | 2011-11-01 | CLOUDFLARENET, US\n\
Error: no ASN or IP match on line 7.\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn request_lists_every_address_between_begin_and_end() {
        let r = bulk_request(&[ip("8.8.8.8"), ip("2606:4700::1111")]);
        assert_eq!(r, "begin\nverbose\n8.8.8.8\n2606:4700::1111\nend\n");
    }

    #[test]
    fn parses_answers_na_multiple_origins_and_ipv6() {
        let r = parse_bulk_reply(REPLY);
        assert_eq!(r.answers.len(), 4);
        let g = &r.answers[&ip("8.8.8.8")];
        assert_eq!(g.asns, vec![15169]);
        assert_eq!(g.prefix.as_deref(), Some("8.8.8.0/24"));
        assert_eq!(g.country.as_deref(), Some("US"));
        assert_eq!(g.registry.as_deref(), Some("arin"));
        assert_eq!(g.allocated.as_deref(), Some("2023-12-28"));
        assert_eq!(g.as_name.as_deref(), Some("GOOGLE, US"));
        let na = &r.answers[&ip("10.1.2.3")];
        assert!(!na.is_announced());
        assert_eq!(na.prefix, None);
        assert_eq!(na.as_name, None);
        assert_eq!(r.answers[&ip("216.90.108.31")].asns, vec![23028, 701]);
        assert_eq!(r.answers[&ip("2606:4700::1111")].asns, vec![13335]);
        assert_eq!(
            r.bad_lines,
            vec!["Error: no ASN or IP match on line 7.".to_owned()]
        );
        let j = g.to_json("whois");
        assert_eq!(j["asn"], 15169);
        assert_eq!(j["mode"], "whois");
        assert_eq!(na.to_json("whois")["asn"], Value::Null);
    }

    #[test]
    fn garbage_and_lies_are_bad_lines() {
        let r = parse_bulk_reply(
            "x|y\nabc | 1.2.3.4 | 1.2.3.0/24 | US | arin | 2000-01-01 | X\n\
             15169 | not-an-ip | NA | NA | NA | NA | NA\n\
             15169 | 1.2.3.4 | 9.9.9.0/24 | US | arin | 2000-01-01 | PREFIX ELSEWHERE\n\
             \u{0}\u{1}binary\n",
        );
        assert!(r.answers.is_empty());
        assert_eq!(r.bad_count, 5);
        assert_eq!(r.bad_lines.len(), KEPT_BAD_LINES);
    }

    /// Hostile answers: each is sanitized or a bad line for its address only, and whatever
    /// is kept is clean text, an ASN of 32 bits and a prefix `::cidr` accepts.
    #[test]
    fn hostile_lines_are_sanitized_or_refused() {
        let bytes =
            b"15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2023-12-28 | EVIL\x00NAME\x1b[2J\n\
              13335 | 1.1.1.1 | 1.1.1.1/24 | U\x00 | ar\xffin | 99999-01-01 | CLOUD\xfe\xffFLARE\n\
              4294967296 | 9.9.9.9 | 9.9.9.0/24 | US | arin | 2000-01-01 | HUGE ASN\n\
              AS1 | 9.9.9.10 | 9.9.9.0/33 | US | arin | 2000-01-01 | BAD PREFIX\n\
              AS2 | 9.9.9.11 | \x00 | US | arin | 2000-01-01 | NUL PREFIX\n";
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        let long = "L".repeat(5000);
        text.push_str(&format!(
            "64500 | 10.0.0.1 | 10.0.0.0/8 | ZZ | ripencc | 2000-02-30 | {long}\n"
        ));
        let many: Vec<String> = (1..=17).map(|a| a.to_string()).collect();
        text.push_str(&format!(
            "{} | 10.0.0.2 | 10.0.0.0/8 | ZZ | ripencc | 2000-01-01 | MOAS\n",
            many.join(" ")
        ));
        let r = parse_bulk_reply(&text);

        let g = &r.answers[&ip("8.8.8.8")];
        assert_eq!(g.as_name.as_deref(), Some("EVIL\u{FFFD}NAME\u{FFFD}[2J"));
        let c = &r.answers[&ip("1.1.1.1")];
        assert_eq!(c.prefix.as_deref(), Some("1.1.1.0/24"), "host bits cleared");
        assert_eq!(c.country, None);
        assert_eq!(c.registry.as_deref(), Some("ar\u{FFFD}in"));
        assert_eq!(c.allocated, None, "year 99999");
        assert_eq!(c.as_name.as_deref(), Some("CLOUD\u{FFFD}\u{FFFD}FLARE"));
        let l = &r.answers[&ip("10.0.0.1")];
        assert!(l.as_name.as_ref().unwrap().len() <= sanitize::MAX_NAME);
        assert_eq!(l.allocated, None, "30 February");
        for bad in ["9.9.9.9", "9.9.9.10", "9.9.9.11", "10.0.0.2"] {
            assert!(!r.answers.contains_key(&ip(bad)), "{bad}");
        }
        assert_eq!(r.bad_count, 4);
        assert!(r
            .bad_lines
            .iter()
            .all(|l| sanitize::is_clean(l, 4 * sanitize::MAX_QUOTE)));
        for a in r.answers.values() {
            assert!(sanitize::json_is_clean(
                &a.to_json("whois"),
                sanitize::MAX_NAME
            ));
        }
    }

    #[test]
    fn origin_lines_for_one_address_merge_up_to_the_limit() {
        let mut text = String::new();
        for asn in 1..=20 {
            text.push_str(&format!(
                "{asn} | 10.0.0.1 | 10.0.0.0/8 | ZZ | x | NA | NAME\n"
            ));
        }
        let r = parse_bulk_reply(&text);
        assert_eq!(r.answers[&ip("10.0.0.1")].asns.len(), MAX_ORIGINS);
        assert_eq!(r.bad_count, 20 - MAX_ORIGINS);
    }

    /// Found by review: an AS record or an origin record saying `NA` has no AS; reading its
    /// first AS panicked the network thread (index out of bounds).
    #[test]
    fn na_records_in_dns_mode_are_no_panic() {
        assert!(parse_as_name_txt("NA | US | arin | 2000-03-30 | NAME").is_err());
        let na = origin_of(ip("10.1.2.3"), &["NA | NA | NA | NA | NA".to_owned()])
            .unwrap()
            .unwrap();
        assert!(!na.is_announced());
        assert_eq!(origin_of(ip("10.1.2.3"), &[]).unwrap(), None);
    }

    #[test]
    fn origin_records_must_hold_the_address() {
        let txts = ["15169 | 8.8.8.1/24 | US | arin | 2023-12-28".to_owned()];
        let a = origin_of(ip("8.8.8.8"), &txts).unwrap().unwrap();
        assert_eq!(a.prefix.as_deref(), Some("8.8.8.0/24"));
        assert!(origin_of(ip("9.9.9.9"), &txts).is_err());
        assert!(origin_of(ip("8.8.8.8"), &["4294967296 | 8.8.8.0/24 | US".to_owned()]).is_err());
        let odd =
            parse_origin_txt("15169 | 8.8.8.0/24 | U\u{0}S | ar\u{0}in | 0000-00-00").unwrap();
        assert_eq!((odd.country, odd.allocated), (None, None));
        assert_eq!(odd.registry.as_deref(), Some("ar\u{FFFD}in"));
    }

    #[test]
    fn dns_names_reverse_octets_and_nibbles() {
        assert_eq!(origin_name(ip("8.8.4.1")), "1.4.8.8.origin.asn.cymru.com.");
        assert_eq!(
            origin_name(ip("2001:db8::1")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.origin6.asn.cymru.com."
        );
        assert_eq!(as_name_query(15169), "AS15169.asn.cymru.com.");
    }

    #[test]
    fn parses_origin_and_as_records() {
        let a = parse_origin_txt("23028 701 | 216.90.108.0/24 | US | arin | 1998-09-25").unwrap();
        assert_eq!(a.asns, vec![23028, 701]);
        assert_eq!(a.prefix.as_deref(), Some("216.90.108.0/24"));
        assert_eq!(a.allocated.as_deref(), Some("1998-09-25"));
        assert!(parse_origin_txt("garbage").is_err());
        assert!(parse_origin_txt("x | 1.2.3.0/24 | US").is_err());
        assert!(parse_origin_txt("1 | not/a/prefix | US").is_err());
        let (asn, name) = parse_as_name_txt("15169 | US | arin | 2000-03-30 | GOOGLE, US").unwrap();
        assert_eq!((asn, name.as_deref()), (15169, Some("GOOGLE, US")));
        assert!(parse_as_name_txt("15169 | US").is_err());

        let wide = parse_origin_txt("3356 | 8.0.0.0/9 | US | arin | 1992-12-01").unwrap();
        let narrow = parse_origin_txt("15169 | 8.8.8.0/24 | US | arin | 2023-12-28").unwrap();
        let also = parse_origin_txt("396982 | 8.8.8.0/24 | US | arin | 2023-12-28").unwrap();
        let best = best_origin(&[wide, narrow, also]).unwrap();
        assert_eq!(best.prefix.as_deref(), Some("8.8.8.0/24"));
        assert_eq!(best.asns, vec![15169, 396982]);
        assert_eq!(best_origin(&[]), None);
    }

    /// A bulk whois server on loopback answering from `table`; returns the port and the
    /// number of connections it accepted once `conns` connections were served.
    fn server(
        conns: usize,
        table: HashMap<String, String>,
    ) -> (u16, std::thread::JoinHandle<Vec<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..conns {
                let (mut s, _) = listener.accept().unwrap();
                let mut lines = Vec::new();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut out = String::from("Bulk mode; whois.cymru.com [2024-05-01 10:00:00 +0000]\nAS | IP | BGP Prefix | CC | Registry | Allocated | AS Name\n");
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap() == 0 {
                        break;
                    }
                    let l = l.trim().to_owned();
                    if l == "end" {
                        lines.push(l);
                        break;
                    }
                    if l != "begin" && l != "verbose" {
                        out.push_str(
                            table
                                .get(&l)
                                .map_or(&format!("NA | {l} | NA | NA | NA | NA | NA"), |v| v),
                        );
                        out.push('\n');
                    }
                    lines.push(l);
                }
                s.write_all(out.as_bytes()).unwrap();
                seen.push(lines);
            }
            seen
        });
        (port, h)
    }

    #[test]
    fn one_connection_answers_a_whole_batch() {
        let table = HashMap::from([(
            "8.8.8.8".to_owned(),
            "15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2023-12-28 | GOOGLE, US".to_owned(),
        )]);
        let (port, h) = server(1, table);
        let ips = [ip("8.8.8.8"), ip("192.0.2.1"), ip("2001:db8::1")];
        let r = whois_bulk(
            "127.0.0.1",
            port,
            &ips,
            Duration::from_secs(5),
            &Cancel::new(),
        );
        assert_eq!(r.error, None);
        assert_eq!(r.answers.len(), 3);
        assert_eq!(r.answers[&ip("8.8.8.8")].asns, vec![15169]);
        assert!(!r.answers[&ip("2001:db8::1")].is_announced());
        let seen = h.join().unwrap();
        assert_eq!(seen.len(), 1, "one connection");
        assert_eq!(
            seen[0],
            vec![
                "begin",
                "verbose",
                "8.8.8.8",
                "192.0.2.1",
                "2001:db8::1",
                "end"
            ]
        );
    }

    #[test]
    fn a_silent_server_times_out_and_a_refused_port_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let keep = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(600));
            drop(s);
        });
        let t = std::time::Instant::now();
        let r = whois_bulk(
            "127.0.0.1",
            port,
            &[ip("8.8.8.8")],
            Duration::from_millis(300),
            &Cancel::new(),
        );
        assert!(
            matches!(r.error, Some(NetError::Timeout(_))),
            "{:?}",
            r.error
        );
        assert!(t.elapsed() < Duration::from_millis(550));
        keep.join().unwrap();

        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let r = whois_bulk(
            "127.0.0.1",
            port,
            &[ip("8.8.8.8")],
            Duration::from_secs(1),
            &Cancel::new(),
        );
        assert!(
            matches!(r.error, Some(NetError::Connect(_))),
            "{:?}",
            r.error
        );
    }

    #[test]
    fn cancel_stops_a_wait_within_a_slice() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let keep = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(800));
            drop(s);
        });
        let cancel = Cancel::new();
        let c2 = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c2.cancel();
        });
        let t = std::time::Instant::now();
        let r = whois_bulk(
            "127.0.0.1",
            port,
            &[ip("8.8.8.8")],
            Duration::from_secs(10),
            &cancel,
        );
        assert_eq!(r.error, Some(NetError::Cancelled));
        assert!(t.elapsed() < Duration::from_millis(400));
        keep.join().unwrap();
    }
}
