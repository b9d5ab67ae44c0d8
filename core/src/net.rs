//! What every network source shares: endpoints, deadlines, cancellation, and worker threads
//! that never receive the server's signals.
//!
//! Inside a Postgres backend only the main thread may touch Postgres, so network calls run
//! on worker threads; the main thread waits for their results in short slices, checking for
//! interrupts in between, and raises the [`Cancel`] flag when the statement is cancelled.
//! Every socket operation here is bounded by a deadline, so a worker never outlives its
//! timeout by more than one read slice.

use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a blocking read or wait lasts before cancellation is checked again.
pub const SLICE: Duration = Duration::from_millis(50);

/// A shared stop flag: set when the statement running a refresh is cancelled, or when a
/// source says to stop (GreyNoise 401 or 429).
#[derive(Clone, Default, Debug)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Why a call to a source failed. The text is recorded with the row (it never holds a
/// secret: no request headers are ever formatted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    Timeout(String),
    Cancelled,
    Connect(String),
    Io(String),
    /// The answer does not follow the protocol.
    Protocol(String),
    /// The answer is larger than any honest answer could be.
    Oversized(usize),
    /// The server reported an error (DNS SERVFAIL, HTTP 5xx, ...).
    Server(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Timeout(what) => write!(f, "timeout: {what}"),
            NetError::Cancelled => f.write_str("cancelled"),
            NetError::Connect(e) => write!(f, "cannot connect: {e}"),
            NetError::Io(e) => write!(f, "connection error: {e}"),
            NetError::Protocol(e) => write!(f, "bad answer: {e}"),
            NetError::Oversized(limit) => write!(f, "answer larger than {limit} bytes"),
            NetError::Server(e) => write!(f, "server error: {e}"),
        }
    }
}

impl std::error::Error for NetError {}

/// A point in time a network operation must finish by.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

/// The longest timeout a deadline takes: far beyond any setting, and small enough that
/// adding it to the clock cannot overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(366 * 86_400);

impl Deadline {
    pub fn after(timeout: Duration) -> Self {
        let now = Instant::now();
        Deadline(now.checked_add(timeout.min(MAX_TIMEOUT)).unwrap_or(now))
    }
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }
    /// The next wait: at most one slice, never past the deadline.
    pub fn slice(&self) -> Option<Duration> {
        self.remaining().map(|r| r.min(SLICE))
    }
}

/// Parses `host`, `host:port`, `a.b.c.d:port` or `[v6]:port`, with `default_port`.
pub fn parse_endpoint(value: &str, default_port: u16) -> Result<(String, u16), String> {
    let v = value.trim();
    if v.is_empty() {
        return Err("the endpoint is empty".to_owned());
    }
    if let Some(rest) = v.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("\"{v}\": missing ']'"))?;
        let port = match after {
            "" => default_port,
            p => parse_port(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("\"{v}\": expected :port after ']'"))?,
            )?,
        };
        return Ok((host.to_owned(), port));
    }
    if v.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok((v.to_owned(), default_port));
    }
    match v.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), parse_port(port)?)),
        None => Ok((v.to_owned(), default_port)),
    }
    .and_then(|(host, port)| {
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if valid {
            Ok((host, port))
        } else {
            Err(format!("\"{host}\" is not a host name or address"))
        }
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("\"{p}\" is not a port number (1-65535)"))
}

/// Resolves and connects with a deadline, trying each address in turn.
pub fn connect(
    host: &str,
    port: u16,
    deadline: Deadline,
    cancel: &Cancel,
) -> Result<TcpStream, NetError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| NetError::Connect(format!("{host}: {e}")))?
        .collect();
    let mut last = NetError::Connect(format!("{host}: no address"));
    for addr in addrs {
        if cancel.is_cancelled() {
            return Err(NetError::Cancelled);
        }
        let Some(left) = deadline.remaining() else {
            return Err(NetError::Timeout(format!("connecting to {host}:{port}")));
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                last = NetError::Timeout(format!("connecting to {addr}"))
            }
            Err(e) => last = NetError::Connect(format!("{addr}: {e}")),
        }
    }
    Err(last)
}

/// Reads until the peer closes the connection, `done` says the answer is complete, the
/// deadline passes or the answer exceeds `limit` bytes. Returns what was read so far with
/// the error, so a caller can keep the complete part of a broken answer.
pub fn read_to_end(
    stream: &mut TcpStream,
    limit: usize,
    deadline: Deadline,
    cancel: &Cancel,
    done: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, Option<NetError>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if cancel.is_cancelled() {
            return (buf, Some(NetError::Cancelled));
        }
        let Some(slice) = deadline.slice() else {
            return (
                buf,
                Some(NetError::Timeout("waiting for the answer".to_owned())),
            );
        };
        if let Err(e) = stream.set_read_timeout(Some(slice)) {
            return (buf, Some(NetError::Io(e.to_string())));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return (buf, None),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > limit {
                    buf.truncate(limit);
                    return (buf, Some(NetError::Oversized(limit)));
                }
                if done(&buf) {
                    return (buf, None);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return (buf, Some(io_error(e))),
        }
    }
}

pub fn io_error(e: io::Error) -> NetError {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => NetError::Timeout(e.to_string()),
        _ => NetError::Io(e.to_string()),
    }
}

/// Spawns a thread that never runs the server's signal handlers: all signals are blocked
/// while it is created (a new thread inherits the creating thread's mask), so they keep
/// being delivered to the main thread, whose handlers Postgres installed for it.
pub fn spawn_worker<F, T>(name: &str, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: plain libc calls on local signal sets; the previous mask is restored below
    // before any other code runs on this thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .stack_size(256 * 1024)
            .spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        spawned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("whois.cymru.com", 43).unwrap(),
            ("whois.cymru.com".into(), 43)
        );
        assert_eq!(
            parse_endpoint("127.0.0.1:4343", 43).unwrap(),
            ("127.0.0.1".into(), 4343)
        );
        assert_eq!(
            parse_endpoint("[::1]:53", 5353).unwrap(),
            ("::1".into(), 53)
        );
        assert_eq!(parse_endpoint("[::1]", 53).unwrap(), ("::1".into(), 53));
        assert_eq!(parse_endpoint("::1", 53).unwrap(), ("::1".into(), 53));
        assert!(parse_endpoint("", 43).is_err());
        assert!(parse_endpoint("host:0", 43).is_err());
        assert!(parse_endpoint("host:99999", 43).is_err());
        assert!(parse_endpoint("bad host", 43).is_err());
        assert!(parse_endpoint("[::1", 43).is_err());
    }

    #[test]
    fn deadline_slices_never_pass_the_deadline() {
        let d = Deadline::after(Duration::from_millis(20));
        assert!(d.slice().unwrap() <= Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(30));
        assert!(d.slice().is_none());
    }

    #[test]
    fn workers_run_with_signals_blocked() {
        let handle = spawn_worker("probe", || unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            libc::sigismember(&mask, libc::SIGINT) == 1
                && libc::sigismember(&mask, libc::SIGUSR1) == 1
        })
        .unwrap();
        assert!(handle.join().unwrap());
        // The spawning thread's own mask is restored.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            assert_eq!(libc::sigismember(&mask, libc::SIGINT), 0);
        }
    }
}
