//! Requests Valet itself sends to addresses its clients chose (back-channel logout): an SSRF
//! surface. The URL is checked when it is registered and again when it is used
//! (`ip::check_outbound_url`), and names are resolved by a resolver that refuses any name
//! with a loopback, private or link-local address, so a public name that resolves (or later
//! re-resolves) to an internal address is refused too. No redirects are followed; requests
//! time out quickly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use valet_core::engine::ip::is_public_address;

/// The whole of one outbound request, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves names to public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public_address(a.ip())) {
                return Err(format!("{} resolves to a private or loopback address", name.as_str()).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The client for requests to client-chosen URLs. With `allow_private` (a development
/// setting) names resolve as usual, so a local test receiver can be reached.
pub fn client(allow_private: bool) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    let builder = if allow_private { builder } else { builder.dns_resolver(Arc::new(PublicOnly)) };
    builder.build()
}
