//! A small stub resolver: one question to one recursive server over UDP (TCP when the
//! answer is truncated), with a deadline and cancellation. Messages are encoded and decoded
//! by hickory-proto; the sockets are plain std ones so no async runtime runs in a backend.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::net::{self, Cancel, Deadline, NetError};
use crate::sanitize;

/// The outcome of a question the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    Found(Vec<T>),
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// The name exists but has no record of the asked type.
    NoData,
}

impl<T> Lookup<T> {
    pub fn status(&self) -> &'static str {
        match self {
            Lookup::Found(_) => "NOERROR",
            Lookup::NxDomain => "NXDOMAIN",
            Lookup::NoData => "NODATA",
        }
    }
}

/// Parses `ip_inventory.dns_server`: an address with an optional port (default 53).
pub fn parse_server(value: &str) -> Result<SocketAddr, String> {
    let (host, port) = net::parse_endpoint(value, 53)?;
    let ip: IpAddr = host.parse().map_err(|_| {
        format!("\"{host}\" is not an IP address (the DNS server is given by address)")
    })?;
    Ok(SocketAddr::new(ip, port))
}

/// The first `nameserver` of a resolv.conf text.
pub fn nameserver_from_resolv_conf(text: &str) -> Option<SocketAddr> {
    text.lines()
        .map(|l| l.split(['#', ';']).next().unwrap_or("").trim())
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
}

/// The name a PTR question asks about: `4.4.8.8.in-addr.arpa.` or nibbles under `ip6.arpa.`.
pub fn ptr_name(ip: IpAddr) -> String {
    let zone = if ip.is_ipv4() {
        "in-addr.arpa."
    } else {
        "ip6.arpa."
    };
    format!("{}.{zone}", super::cymru::reversed_labels(ip))
}

const MAX_UDP: usize = 4096;
const MAX_TCP: usize = 65_535;

/// Most records of one answer kept: a PTR or origin TXT answer has one or two.
pub const MAX_RECORDS: usize = 16;
/// Longest TXT record kept, in bytes (an origin record is ~50 bytes; the protocol allows
/// 64 KiB).
pub const MAX_TXT: usize = 1024;

fn question(name: &str, rtype: RecordType) -> Result<Query, NetError> {
    let qname = Name::from_ascii(name)
        .map_err(|e| NetError::Protocol(format!("{}: {e}", sanitize::quote(name))))?;
    Ok(Query::query(qname, rtype))
}

/// Asks one question and returns the answer records of the asked type.
pub fn query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Lookup<RData>, NetError> {
    let asked = question(name, rtype)?;
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(asked.clone());
    let id = msg.metadata.id;
    let request = msg
        .to_vec()
        .map_err(|e| NetError::Protocol(e.to_string()))?;
    let deadline = Deadline::after(timeout);

    let mut reply = udp_exchange(server, &request, id, &asked, deadline, cancel)?;
    if reply.metadata.truncation {
        reply = tcp_exchange(server, &request, id, &asked, deadline, cancel)?;
    }
    records(reply, rtype)
}

/// The records of the asked type in our reply, by its response code.
fn records(reply: Message, rtype: RecordType) -> Result<Lookup<RData>, NetError> {
    match reply.metadata.response_code {
        ResponseCode::NoError => {
            let records: Vec<RData> = reply
                .answers
                .into_iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| r.data)
                .collect();
            Ok(if records.is_empty() {
                Lookup::NoData
            } else {
                Lookup::Found(records)
            })
        }
        ResponseCode::NXDomain => Ok(Lookup::NxDomain),
        other => Err(NetError::Server(format!("DNS {other}"))),
    }
}

/// What a question asks for, as [`parse_reply`] reads the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Txt,
    Ptr,
}

/// Reads a reply message to the question (`id`, `name`, `ask`) exactly as the network path
/// does (the same decoding, matching, records and sanitizing; without the switch to TCP on
/// truncation): `Ok(None)` when the message answers another question. For the fuzzers and
/// tests.
pub fn parse_reply(
    bytes: &[u8],
    id: u16,
    name: &str,
    ask: Ask,
) -> Result<Option<Lookup<String>>, NetError> {
    let rtype = match ask {
        Ask::Txt => RecordType::TXT,
        Ask::Ptr => RecordType::PTR,
    };
    let asked = question(name, rtype)?;
    let Some(reply) = check_reply(bytes, id, &asked)? else {
        return Ok(None);
    };
    let found = records(reply, rtype)?;
    Ok(Some(match ask {
        Ask::Txt => txt_strings(found),
        Ask::Ptr => ptr_names(found),
    }))
}

fn check_reply(bytes: &[u8], id: u16, asked: &Query) -> Result<Option<Message>, NetError> {
    let msg = Message::from_vec(bytes).map_err(|e| NetError::Protocol(e.to_string()))?;
    // An answer to another question (late, spoofed: the ID alone is 16 bits to guess) is
    // not ours: keep waiting. Names compare without regard to case.
    let ours = msg.metadata.id == id
        && msg.queries.len() == 1
        && msg.queries[0].name() == asked.name()
        && msg.queries[0].query_type() == asked.query_type()
        && msg.queries[0].query_class() == asked.query_class();
    Ok(ours.then_some(msg))
}

fn udp_exchange(
    server: SocketAddr,
    request: &[u8],
    id: u16,
    asked: &Query,
    deadline: Deadline,
    cancel: &Cancel,
) -> Result<Message, NetError> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let socket = UdpSocket::bind(bind).map_err(net::io_error)?;
    // A connected socket only receives datagrams from the server.
    socket
        .connect(server)
        .map_err(|e| NetError::Connect(format!("{server}: {e}")))?;
    socket.send(request).map_err(net::io_error)?;
    let mut buf = [0u8; MAX_UDP];
    let mut last_bad = None;
    loop {
        if cancel.is_cancelled() {
            return Err(NetError::Cancelled);
        }
        let Some(slice) = deadline.slice() else {
            return Err(last_bad.unwrap_or_else(|| {
                NetError::Timeout(format!("no answer from DNS server {server}"))
            }));
        };
        socket
            .set_read_timeout(Some(slice))
            .map_err(net::io_error)?;
        match socket.recv(&mut buf) {
            Ok(n) => match check_reply(&buf[..n], id, asked) {
                Ok(Some(msg)) => return Ok(msg),
                Ok(None) => {}
                // Garbage may be spoofed: wait for the real answer until the deadline.
                Err(e) => last_bad = Some(e),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(NetError::Io(format!("{server}: {e}"))),
        }
    }
}

fn tcp_exchange(
    server: SocketAddr,
    request: &[u8],
    id: u16,
    asked: &Query,
    deadline: Deadline,
    cancel: &Cancel,
) -> Result<Message, NetError> {
    let mut stream = net::connect(&server.ip().to_string(), server.port(), deadline, cancel)?;
    let len =
        u16::try_from(request.len()).map_err(|_| NetError::Protocol("request too long".into()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(request);
    stream
        .set_write_timeout(deadline.remaining())
        .map_err(net::io_error)?;
    stream.write_all(&framed).map_err(net::io_error)?;
    let (bytes, error) = net::read_to_end(&mut stream, MAX_TCP + 2, deadline, cancel, |b| {
        b.len() >= 2 && b.len() >= 2 + usize::from(u16::from_be_bytes([b[0], b[1]]))
    });
    if bytes.len() >= 2 {
        let want = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
        if bytes.len() >= 2 + want {
            return check_reply(&bytes[2..2 + want], id, asked)?
                .ok_or_else(|| NetError::Protocol("answer to another question".into()));
        }
    }
    Err(error.unwrap_or_else(|| NetError::Protocol("DNS over TCP answer cut short".into())))
}

/// TXT records of a name, each record's strings joined.
pub fn txt(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Lookup<String>, NetError> {
    query(server, name, RecordType::TXT, timeout, cancel).map(txt_strings)
}

/// Each TXT record's strings joined, as sanitized text of at most [`MAX_TXT`] bytes; at
/// most [`MAX_RECORDS`] records.
fn txt_strings(found: Lookup<RData>) -> Lookup<String> {
    values(found, |r| match r {
        RData::TXT(t) => Some(sanitize::text_bytes(&t.txt_data.concat(), MAX_TXT)),
        _ => None,
    })
}

/// The values `pick` makes of the records, at most [`MAX_RECORDS`]; no value is no data.
fn values(found: Lookup<RData>, pick: impl FnMut(RData) -> Option<String>) -> Lookup<String> {
    match found {
        Lookup::Found(records) => {
            let values: Vec<String> = records
                .into_iter()
                .filter_map(pick)
                .take(MAX_RECORDS)
                .collect();
            if values.is_empty() {
                Lookup::NoData
            } else {
                Lookup::Found(values)
            }
        }
        Lookup::NxDomain => Lookup::NxDomain,
        Lookup::NoData => Lookup::NoData,
    }
}

/// PTR names of an address, without the trailing dot.
pub fn ptr(
    server: SocketAddr,
    ip: IpAddr,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Lookup<String>, NetError> {
    query(server, &ptr_name(ip), RecordType::PTR, timeout, cancel).map(ptr_names)
}

/// PTR names without the trailing dot, as sanitized text of at most
/// [`sanitize::MAX_NAME`] bytes (hickory escapes unprintable label bytes as `\DDD`, which
/// can make a 255-byte name longer); at most [`MAX_RECORDS`] names. The root name is no name.
fn ptr_names(found: Lookup<RData>) -> Lookup<String> {
    values(found, |r| match r {
        RData::PTR(p) => Some(sanitize::text(
            p.0.to_ascii().trim_end_matches('.'),
            sanitize::MAX_NAME,
        ))
        .filter(|name| !name.is_empty()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{PTR, TXT};
    use hickory_proto::rr::Record;

    #[test]
    fn servers_and_resolv_conf() {
        assert_eq!(
            parse_server("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert!(parse_server("dns.google").is_err());
        let conf =
            "# comment\nsearch example.org\nnameserver 10.0.0.2 # first\nnameserver 10.0.0.3\n";
        assert_eq!(
            nameserver_from_resolv_conf(conf),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(nameserver_from_resolv_conf("options ndots:1\n"), None);
        assert_eq!(
            nameserver_from_resolv_conf("nameserver fe80::1%eth0\n"),
            Some("[fe80::1]:53".parse().unwrap())
        );
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            ptr_name("8.8.4.4".parse().unwrap()),
            "4.4.8.8.in-addr.arpa."
        );
        assert!(ptr_name("2001:db8::1".parse().unwrap()).ends_with(".8.b.d.0.1.0.0.2.ip6.arpa."));
    }

    /// Answers each datagram with `answer(question name, id)`; `None` stays silent.
    fn udp_server(answer: impl Fn(&Message) -> Vec<Vec<u8>> + Send + 'static) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let q = Message::from_vec(&buf[..n]).unwrap();
                for reply in answer(&q) {
                    s.send_to(&reply, from).unwrap();
                }
            }
        });
        addr
    }

    fn reply_to(q: &Message, rcode: ResponseCode, data: Vec<RData>) -> Vec<u8> {
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_queries(q.queries.clone());
        let name = q.queries[0].name().clone();
        for d in data {
            m.add_answer(Record::from_rdata(name.clone(), 60, d));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn txt_ptr_nxdomain_and_servfail() {
        let server = udp_server(|q| {
            let name = q.queries[0].name().to_ascii();
            vec![match name.as_str() {
                "1.4.8.8.origin.asn.cymru.com." => reply_to(
                    q,
                    ResponseCode::NoError,
                    vec![RData::TXT(TXT::new(vec![
                        "15169 | 8.8.4.0/24 | US | arin | 2023-12-28".into(),
                    ]))],
                ),
                "4.4.8.8.in-addr.arpa." => reply_to(
                    q,
                    ResponseCode::NoError,
                    vec![RData::PTR(PTR(Name::from_ascii("dns.google.").unwrap()))],
                ),
                "5.5.5.5.in-addr.arpa." => reply_to(q, ResponseCode::ServFail, vec![]),
                "6.6.6.6.in-addr.arpa." => reply_to(q, ResponseCode::NoError, vec![]),
                _ => reply_to(q, ResponseCode::NXDomain, vec![]),
            }]
        });
        let c = Cancel::new();
        let t = Duration::from_secs(2);
        assert_eq!(
            txt(server, "1.4.8.8.origin.asn.cymru.com.", t, &c).unwrap(),
            Lookup::Found(vec![
                "15169 | 8.8.4.0/24 | US | arin | 2023-12-28".to_owned()
            ])
        );
        assert_eq!(
            ptr(server, "8.8.4.4".parse().unwrap(), t, &c).unwrap(),
            Lookup::Found(vec!["dns.google".to_owned()])
        );
        assert_eq!(
            ptr(server, "7.7.7.7".parse().unwrap(), t, &c).unwrap(),
            Lookup::NxDomain
        );
        assert_eq!(
            ptr(server, "6.6.6.6".parse().unwrap(), t, &c).unwrap(),
            Lookup::NoData
        );
        assert!(matches!(
            ptr(server, "5.5.5.5".parse().unwrap(), t, &c),
            Err(NetError::Server(_))
        ));
    }

    fn question_of(name: &str, rtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        q
    }

    const ORIGIN: &str = "1.4.8.8.origin.asn.cymru.com.";
    const PTR_Q: &str = "4.4.8.8.in-addr.arpa.";

    /// Hostile TXT and PTR data becomes clean, bounded text (the plaintext DNS path of
    /// issue 15: anyone on the path can answer).
    #[test]
    fn hostile_records_become_clean_bounded_text() {
        let q = question_of(ORIGIN, RecordType::TXT);
        let id = q.metadata.id;
        let big = vec![b'7'; 255];
        let mut data = vec![
            RData::TXT(TXT::from_bytes(vec![b"15169\x00 | 8.8.8.0/24 | U\xff"])),
            RData::TXT(TXT::from_bytes(vec![&big[..]; 20])),
        ];
        for _ in 0..40 {
            data.push(RData::TXT(TXT::new(vec!["x".into()])));
        }
        let reply = reply_to(&q, ResponseCode::NoError, data);
        let Some(Lookup::Found(txts)) = parse_reply(&reply, id, ORIGIN, Ask::Txt).unwrap() else {
            panic!()
        };
        assert_eq!(txts[0], "15169\u{FFFD} | 8.8.8.0/24 | U\u{FFFD}");
        assert!(txts[1].len() <= MAX_TXT);
        assert_eq!(txts.len(), MAX_RECORDS);
        assert!(txts.iter().all(|t| sanitize::is_clean(t, MAX_TXT)));

        let q = question_of(PTR_Q, RecordType::PTR);
        let id = q.metadata.id;
        let label = |b: &[u8]| hickory_proto::rr::domain::Label::from_raw_bytes(b).unwrap();
        let evil =
            Name::from_labels(vec![label(b"evil\x00\x1b[2J\xff"), label(b"example")]).unwrap();
        let long = Name::from_labels(vec![label(&[0u8; 63]); 3]).unwrap();
        let reply = reply_to(
            &q,
            ResponseCode::NoError,
            vec![RData::PTR(PTR(evil)), RData::PTR(PTR(long))],
        );
        let Some(Lookup::Found(names)) = parse_reply(&reply, id, PTR_Q, Ask::Ptr).unwrap() else {
            panic!()
        };
        assert_eq!(names[0], "evil\\000\\033\\[2J\\377.example");
        assert!(names[1].len() <= sanitize::MAX_NAME && names[1].ends_with(sanitize::CUT_MARK));
        assert!(names
            .iter()
            .all(|n| sanitize::is_clean(n, sanitize::MAX_NAME)));
    }

    /// A name whose compression pointer points at itself, and every truncation of a valid
    /// reply: errors, never a hang or a panic.
    #[test]
    fn compression_loops_and_truncated_replies_are_errors() {
        let q = question_of(PTR_Q, RecordType::PTR);
        let id = q.metadata.id;
        let mut m = reply_to(&q, ResponseCode::NoError, vec![]);
        m[6..8].copy_from_slice(&1u16.to_be_bytes()); // one answer
        let at = u16::try_from(m.len()).unwrap();
        m.extend_from_slice(&(0xC000 | at).to_be_bytes()); // its name: a pointer to itself
        m.extend_from_slice(&[0, 12, 0, 1, 0, 0, 0, 60, 0, 2]);
        m.extend_from_slice(&(0xC000 | at).to_be_bytes()); // PTR data: the same loop
        assert!(matches!(
            parse_reply(&m, id, PTR_Q, Ask::Ptr),
            Err(NetError::Protocol(_))
        ));

        let good = reply_to(
            &q,
            ResponseCode::NoError,
            vec![RData::PTR(PTR(Name::from_ascii("dns.google.").unwrap()))],
        );
        assert_eq!(
            parse_reply(&good, id, PTR_Q, Ask::Ptr).unwrap(),
            Some(Lookup::Found(vec!["dns.google".to_owned()]))
        );
        for cut in 0..good.len() {
            assert!(
                !matches!(
                    parse_reply(&good[..cut], id, PTR_Q, Ask::Ptr),
                    Ok(Some(Lookup::Found(_)))
                ),
                "cut at {cut}"
            );
        }
        assert_eq!(
            parse_reply(&good, id.wrapping_add(1), PTR_Q, Ask::Ptr).unwrap(),
            None
        );
    }

    #[test]
    fn wrong_ids_and_garbage_are_ignored_until_the_real_answer() {
        let server = udp_server(|q| {
            let mut wrong = Message::new(
                q.metadata.id.wrapping_add(1),
                MessageType::Response,
                OpCode::Query,
            );
            wrong.add_queries(q.queries.clone());
            vec![
                b"\x00garbage".to_vec(),
                wrong.to_vec().unwrap(),
                reply_to(q, ResponseCode::NXDomain, vec![]),
            ]
        });
        assert_eq!(
            ptr(
                server,
                "1.2.3.4".parse().unwrap(),
                Duration::from_secs(2),
                &Cancel::new()
            )
            .unwrap(),
            Lookup::NxDomain
        );
    }

    #[test]
    fn answers_to_another_question_with_our_id_are_ignored() {
        // A spoofer who guessed the ID answers about another name, then another type, and
        // the real answer comes last; alone, the spoofs are never taken for the answer.
        let spoofs = |q: &Message| {
            let mut other_name = q.clone();
            other_name.queries[0] = Query::query(
                Name::from_ascii("8.8.8.8.in-addr.arpa.").unwrap(),
                RecordType::PTR,
            );
            let mut other_type = q.clone();
            other_type.queries[0] = Query::query(q.queries[0].name().clone(), RecordType::TXT);
            let ptr = vec![RData::PTR(PTR(
                Name::from_ascii("spoofed.example.").unwrap()
            ))];
            vec![
                reply_to(&other_name, ResponseCode::NoError, ptr.clone()),
                reply_to(&other_type, ResponseCode::NoError, ptr),
            ]
        };
        let with_real = udp_server(move |q| {
            let mut out = spoofs(q);
            out.push(reply_to(q, ResponseCode::NXDomain, vec![]));
            out
        });
        let t = Duration::from_millis(500);
        assert_eq!(
            ptr(with_real, "1.2.3.4".parse().unwrap(), t, &Cancel::new()).unwrap(),
            Lookup::NxDomain
        );
        let only_spoofs = udp_server(spoofs);
        let r = ptr(only_spoofs, "1.2.3.4".parse().unwrap(), t, &Cancel::new());
        assert!(matches!(r, Err(NetError::Timeout(_))), "{r:?}");
    }

    #[test]
    fn silence_times_out_and_garbage_only_is_reported() {
        let silent = udp_server(|_| vec![]);
        let t0 = std::time::Instant::now();
        let r = ptr(
            silent,
            "1.2.3.4".parse().unwrap(),
            Duration::from_millis(200),
            &Cancel::new(),
        );
        assert!(matches!(r, Err(NetError::Timeout(_))), "{r:?}");
        assert!(t0.elapsed() < Duration::from_millis(400));
        let garbage = udp_server(|_| vec![b"\x01\x02\x03".to_vec()]);
        let r = ptr(
            garbage,
            "1.2.3.4".parse().unwrap(),
            Duration::from_millis(200),
            &Cancel::new(),
        );
        assert!(matches!(r, Err(NetError::Protocol(_))), "{r:?}");
    }
}
