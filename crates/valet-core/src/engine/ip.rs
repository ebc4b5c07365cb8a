//! IP restrictions and relaxation (spec §8.2): an app's users must come from its listed
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
            // An IPv4 client seen through an IPv6 socket is still that IPv4 address.
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                v4 => v4,
            };
            if policy.ip_ranges.iter().any(|r| in_range(r, ip)) {
                Ok(())
            } else {
                Err(OAuthError::ip_restricted())
            }
        }
        _ => Ok(()),
    }
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
}
