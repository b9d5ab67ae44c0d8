//! The payload of Postgres' `inet`/`cidr` values (`utils/inet.h`, `inet_struct`): one family
//! byte, one netmask-bits byte, then 4 or 16 address bytes. Reading and writing it directly
//! saves the text round trip (`inet_out`/`inet_in`) per row.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// `PGSQL_AF_INET` (= `AF_INET` on Linux) and `PGSQL_AF_INET6` (= `AF_INET + 1`).
pub const PGSQL_AF_INET: u8 = 2;
pub const PGSQL_AF_INET6: u8 = PGSQL_AF_INET + 1;

/// Longest payload: family, bits, 16 address bytes.
pub const MAX_PAYLOAD: usize = 18;

/// Decodes a payload into the address and its netmask length.
pub fn decode(payload: &[u8]) -> Result<(IpAddr, u8), String> {
    let (family, bits, addr) = match payload {
        [family, bits, addr @ ..] => (*family, *bits, addr),
        _ => {
            return Err(format!(
                "{} bytes is too short for an inet value",
                payload.len()
            ))
        }
    };
    let addr = match (family, addr.len()) {
        (PGSQL_AF_INET, 4) => IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
        (PGSQL_AF_INET6, 16) => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(addr).expect("length checked"),
        )),
        _ => {
            return Err(format!(
                "inet family {family} with {} address bytes",
                addr.len()
            ))
        }
    };
    let max_bits = if addr.is_ipv4() { 32 } else { 128 };
    if bits > max_bits {
        return Err(format!("inet netmask /{bits} exceeds /{max_bits}"));
    }
    Ok((addr, bits))
}

/// Encodes a network (its masked address and prefix) as a payload; returns the buffer and
/// the number of bytes used.
pub fn encode(net: IpNetwork) -> ([u8; MAX_PAYLOAD], usize) {
    let mut buf = [0u8; MAX_PAYLOAD];
    buf[1] = net.prefix();
    let len = match net.network() {
        IpAddr::V4(a) => {
            buf[0] = PGSQL_AF_INET;
            buf[2..6].copy_from_slice(&a.octets());
            6
        }
        IpAddr::V6(a) => {
            buf[0] = PGSQL_AF_INET6;
            buf[2..18].copy_from_slice(&a.octets());
            18
        }
    };
    (buf, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for net in [
            "10.0.0.0/8",
            "81.2.69.160/27",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::1/128",
        ] {
            let net: IpNetwork = net.parse().unwrap();
            let (buf, len) = encode(net);
            assert_eq!(decode(&buf[..len]).unwrap(), (net.network(), net.prefix()));
        }
        // encode() writes the masked network address.
        let (buf, len) = encode("81.2.69.161/27".parse().unwrap());
        assert_eq!(&buf[..len], &[2, 27, 81, 2, 69, 160]);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(
            decode(&[2, 24, 10, 0, 0, 1]).unwrap(),
            ("10.0.0.1".parse().unwrap(), 24)
        );
        for bad in [
            &[2u8, 24, 10, 0, 0][..],
            &[2, 33, 10, 0, 0, 1],
            &[9, 8, 1, 2, 3, 4],
            &[2],
            &[],
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let mut v6 = vec![3, 129];
        v6.extend_from_slice(&[0; 16]);
        assert!(decode(&v6).unwrap_err().contains("exceeds /128"));
    }
}
