//! IP restrictions and relaxation (salesforce-wire.md §8.2): an app's users must come from its listed
//! ranges unless the app relaxes them, for every flow or only for refresh.

use std::net::IpAddr;

use valet_proto::OAuthError;

use crate::model::{AppPolicy, IpRelaxation};

/// Where an IP check happens: refresh is exempt under "relax for refresh tokens".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpCheck {
    Login,
    Refresh,
    /// Calls the app's own backend makes about tokens (introspection, revocation).
    Skip,
}

/// One allowed range: CIDR (`10.0.0.0/8`, `2001:db8::/32`), a span (`a.b.c.d-e.f.g.h`) or a
/// single address.
fn in_range(range: &str, ip: IpAddr) -> bool {
    let range = range.trim();
    if let Some((lo, hi)) = range.split_once('-') {
        return match (lo.trim().parse::<IpAddr>(), hi.trim().parse::<IpAddr>()) {
            (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(b))) => match ip {
                IpAddr::V4(x) => (u32::from(a)..=u32::from(b)).contains(&u32::from(x)),
                _ => false,
            },
            (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(b))) => match ip {
                IpAddr::V6(x) => (u128::from(a)..=u128::from(b)).contains(&u128::from(x)),
                _ => false,
            },
            _ => false,
        };
    }
    let (addr, bits) = match range.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (range, None),
    };
    match (addr.parse::<IpAddr>(), ip) {
        (Ok(IpAddr::V4(net)), IpAddr::V4(x)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(net) & mask == u32::from(x) & mask
        }
        (Ok(IpAddr::V6(net)), IpAddr::V6(x)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(net) & mask == u128::from(x) & mask
        }
        _ => false,
    }
}

/// Whether a range string is well-formed (for admin validation).
pub fn valid_range(range: &str) -> bool {
    let probe: IpAddr = std::net::Ipv4Addr::UNSPECIFIED.into();
    let r = range.trim();
    if let Some((lo, hi)) = r.split_once('-') {
        return matches!(
            (lo.trim().parse::<IpAddr>(), hi.trim().parse::<IpAddr>()),
            (Ok(IpAddr::V4(_)), Ok(IpAddr::V4(_))) | (Ok(IpAddr::V6(_)), Ok(IpAddr::V6(_)))
        );
    }
    let (addr, bits) = match r.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (r, None),
    };
    let _ = in_range(r, probe);
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|n| n <= 32)),
        Ok(IpAddr::V6(_)) => bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|n| n <= 128)),
        Err(_) => false,
    }
}

/// Checks a request's address against the app's ranges and relaxation. An unknown address
/// (no peer information) passes: the check guards network origin, which only the server knows.
pub fn check(policy: &AppPolicy, ip: Option<IpAddr>, at: IpCheck) -> Result<(), OAuthError> {
    if policy.ip_ranges.is_empty() || at == IpCheck::Skip {
        return Ok(());
    }
    let enforced = match policy.ip_relaxation {
        IpRelaxation::Enforce => true,
        IpRelaxation::EnforceRelaxRefresh => at != IpCheck::Refresh,
        IpRelaxation::Bypass | IpRelaxation::Bypass2Factor => false,
    };
    match ip {
        Some(ip) if enforced => {
            let ip = canonical(ip);
            if policy.ip_ranges.iter().any(|r| in_range(r, ip)) {
                Ok(())
            } else {
                Err(OAuthError::ip_restricted())
            }
        }
        _ => Ok(()),
    }
}

/// The client's address as far as Valet can trust it: the TCP peer, unless the peer is one of
/// the `trusted` proxies, in which case `X-Forwarded-For` is read from the right (the hop the
/// proxy itself added) and the first address that is not a trusted proxy is the client. A
/// header from anyone else is ignored, so a client cannot choose its address for throttling,
/// IP ranges or logs. An unreadable entry ends the walk at the last trusted hop.
pub fn client_address(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[String]) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| in_range(r, ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops = forwarded_for.iter().flat_map(|h| h.split(',')).map(str::trim).filter(|h| !h.is_empty());
    let mut client = peer;
    for hop in hops.collect::<Vec<_>>().into_iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// An `X-Forwarded-For` entry: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    None
}

/// An IPv4 client seen through an IPv6 socket is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918, unique
/// local), link-local (cloud metadata at 169.254.169.254), shared (CGNAT), unspecified,
/// multicast, documentation or otherwise reserved. Server-side requests go only there, unless
/// a development setting allows private targets.
pub fn is_public_address(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let [o1, o2, ..] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o1 == 0
                || (o1 == 100 && (64..128).contains(&o2))
                || (o1 == 192 && o2 == 0)
                || (o1 == 198 && (o2 == 18 || o2 == 19))
                || o1 >= 240)
        }
        IpAddr::V6(a) => {
            let s0 = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00
                || (s0 & 0xffc0) == 0xfe80
                || s0 == 0x2001 && a.segments()[1] == 0x0db8
                || s0 == 0x0064
                || s0 == 0x2002)
        }
    }
}

/// Checks a URL Valet will send requests to (back-channel logout): `https` (plain `http` only
/// with `allow_private`), no user-info part (`http://127.0.0.1@evil.example` tricks), and a
/// host that is not a private, loopback or link-local address literal (names are resolved
/// and checked again when the request is sent).
pub fn check_outbound_url(url: &str, allow_private: bool) -> Result<(), &'static str> {
    let parsed = url::Url::parse(url).map_err(|_| "is not an absolute URL")?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must use https"),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not contain user information");
    }
    if parsed.fragment().is_some() {
        return Err("must not contain a fragment");
    }
    let literal = match parsed.host() {
        None => return Err("must name a host"),
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err("must not point at this machine");
            }
            None
        }
    };
    if let Some(ip) = literal {
        if !allow_private && !is_public_address(ip) {
            return Err("must not point at a loopback, private or link-local address");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ranges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_range("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!in_range("10.0.0.0/8", ip("11.1.2.3")));
        assert!(in_range("192.168.1.10-192.168.1.20", ip("192.168.1.15")));
        assert!(!in_range("192.168.1.10-192.168.1.20", ip("192.168.1.21")));
        assert!(in_range("127.0.0.1", ip("127.0.0.1")));
        assert!(in_range("::1", ip("::1")));
        assert!(in_range("2001:db8::/32", ip("2001:db8::5")));
        assert!(in_range("0.0.0.0/0", ip("8.8.8.8")));
        assert!(
            valid_range("10.0.0.0/8")
                && valid_range("1.2.3.4-1.2.3.9")
                && !valid_range("10.0.0.0/33")
                && !valid_range("nope")
        );
    }

    #[test]
    fn relaxation() {
        let p = AppPolicy { ip_ranges: vec!["10.0.0.0/8".into()], ..AppPolicy::default() };
        let outside = Some("8.8.8.8".parse().unwrap());
        assert!(check(&p, outside, IpCheck::Login).is_err());
        assert!(check(&p, outside, IpCheck::Refresh).is_err());
        let p = AppPolicy { ip_relaxation: IpRelaxation::EnforceRelaxRefresh, ..p };
        assert!(check(&p, outside, IpCheck::Refresh).is_ok());
        assert!(check(&p, outside, IpCheck::Login).is_err());
        let p = AppPolicy { ip_relaxation: IpRelaxation::Bypass, ..p };
        assert!(check(&p, outside, IpCheck::Login).is_ok());
    }

    #[test]
    fn forwarded_addresses_only_from_trusted_proxies() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let trusted = vec!["10.0.0.0/8".to_string()];
        // A client that is not a proxy cannot choose its address.
        assert_eq!(client_address(ip("8.8.8.8"), &["1.2.3.4"], &trusted), ip("8.8.8.8"));
        assert_eq!(client_address(ip("8.8.8.8"), &["1.2.3.4"], &[]), ip("8.8.8.8"));
        // Through a trusted proxy: the rightmost untrusted hop, whatever the client prepended.
        assert_eq!(client_address(ip("10.0.0.1"), &["6.6.6.6, 9.9.9.9"], &trusted), ip("9.9.9.9"));
        assert_eq!(client_address(ip("10.0.0.1"), &["6.6.6.6", "9.9.9.9, 10.0.0.2"], &trusted), ip("9.9.9.9"));
        assert_eq!(client_address(ip("10.0.0.1"), &["[2001:db8::1]:443"], &trusted), ip("2001:db8::1"));
        assert_eq!(client_address(ip("10.0.0.1"), &["9.9.9.9:1234"], &trusted), ip("9.9.9.9"));
        // Garbage stops the walk at the last trusted hop; no header means the proxy itself.
        assert_eq!(client_address(ip("10.0.0.1"), &["9.9.9.9, nonsense"], &trusted), ip("10.0.0.1"));
        assert_eq!(client_address(ip("10.0.0.1"), &[], &trusted), ip("10.0.0.1"));
        assert_eq!(client_address(ip("::ffff:8.8.8.8"), &[], &trusted), ip("8.8.8.8"));
    }

    #[test]
    fn outbound_urls() {
        for bad in [
            "http://example.com/logout",
            "https://127.0.0.1/logout",
            "https://[::1]/logout",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://localhost/x",
            "https://127.0.0.1@evil.example/x",
            "https://user:pw@rp.example/x",
            "https://0.0.0.0/x",
            "https://100.64.0.1/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(check_outbound_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_outbound_url("https://rp.example/logout", false).is_ok());
        assert!(check_outbound_url("https://8.8.8.8/logout", false).is_ok());
        assert!(check_outbound_url("http://127.0.0.1:9000/logout", true).is_ok());
        assert!(check_outbound_url("http://127.0.0.1@evil.example/x", true).is_err());
    }
}
