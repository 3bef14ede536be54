//! What kind of address a streamhost names, for the dial policy: whether a stranger may
//! make us connect there (BAD-INPUT C3). IPv6 forms that carry an IPv4 address
//! (`::ffff:a.b.c.d`, `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by
//! that IPv4 address: `::ffff:127.0.0.1` is loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The scope of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// Routable on the Internet.
    Public,
    /// A private network: RFC 1918 (10/8, 172.16/12, 192.168/16), shared address space
    /// (100.64/10, carrier-grade NAT), IPv6 unique local (fc00::/7), site-local (fec0::/10).
    Private,
    /// This host: 127/8, ::1.
    Loopback,
    /// Link-local: 169.254/16, fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// Multicast: 224/4, ff00::/8.
    Multicast,
    /// Not a host anyone should dial: broadcast and reserved (240/4, 255.255.255.255),
    /// documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32), IETF
    /// protocol assignments (192.0.0/24), benchmarking (198.18/15).
    Reserved,
}

/// The scope of `ip`.
pub fn scope(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(v4) => scope_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(&v6) {
            Some(v4) => scope_v4(v4),
            None => scope_v6(&v6),
        },
    }
}

fn scope_v4(ip: Ipv4Addr) -> Scope {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, ..) => Scope::Unspecified,
        (127, ..) => Scope::Loopback,
        (169, 254, _) => Scope::LinkLocal,
        (10, ..) | (192, 168, _) => Scope::Private,
        (172, 16..=31, _) | (100, 64..=127, _) => Scope::Private,
        (224..=239, ..) => Scope::Multicast,
        (240..=255, ..) => Scope::Reserved,
        (192, 0, 0 | 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => Scope::Reserved,
        _ => Scope::Public,
    }
}

fn scope_v6(ip: &Ipv6Addr) -> Scope {
    let s = ip.segments();
    if ip.is_unspecified() {
        Scope::Unspecified
    } else if ip.is_loopback() {
        Scope::Loopback
    } else if s[0] & 0xffc0 == 0xfe80 {
        Scope::LinkLocal
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        Scope::Private
    } else if s[0] & 0xff00 == 0xff00 {
        Scope::Multicast
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Scope::Reserved
    } else {
        Scope::Public
    }
}

/// The IPv4 address an IPv6 address carries, in the forms that route to it.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    match s {
        // IPv4-compatible ::a.b.c.d (not :: and ::1, which are IPv6's own).
        [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) != (0, 0) && (hi, lo) != (0, 1) => Some(low(hi, lo)),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        // 6to4 2002:aabb:ccdd::/48.
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(s: &str) -> Scope {
        scope(s.parse().unwrap())
    }

    #[test]
    fn loopback_in_every_disguise_is_loopback() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
        ] {
            assert_eq!(sc(a), Scope::Loopback, "{a}");
        }
    }

    #[test]
    fn private_shared_and_unique_local_ranges_are_private() {
        for a in [
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "fd00::2",
            "fc00::1",
            "fec0::1",
            "::ffff:10.1.2.3",
            "64:ff9b::c0a8:101",
        ] {
            assert_eq!(sc(a), Scope::Private, "{a}");
        }
    }

    #[test]
    fn the_rest_of_the_special_ranges_are_classified() {
        assert_eq!(sc("0.0.0.0"), Scope::Unspecified);
        assert_eq!(sc("::"), Scope::Unspecified);
        assert_eq!(sc("169.254.1.1"), Scope::LinkLocal);
        assert_eq!(sc("fe80::1"), Scope::LinkLocal);
        assert_eq!(sc("224.0.0.1"), Scope::Multicast);
        assert_eq!(sc("ff02::1"), Scope::Multicast);
        assert_eq!(sc("255.255.255.255"), Scope::Reserved);
        assert_eq!(sc("192.0.2.2"), Scope::Reserved);
        assert_eq!(sc("2001:db8::1"), Scope::Reserved);
        assert_eq!(sc("198.18.0.1"), Scope::Reserved);
    }

    #[test]
    fn public_addresses_are_public() {
        for a in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450::1",
            "1.1.1.1",
        ] {
            assert_eq!(sc(a), Scope::Public, "{a}");
        }
    }
}
