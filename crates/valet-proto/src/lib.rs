//! Valet's wire types: what goes over HTTP, in Salesforce's shapes and the OAuth/OIDC
//! standards' shapes. Serde only, no I/O, so the server, the CLI and tests share one
//! definition of every request and response.

pub mod error;
pub mod oidc;
pub mod params;
pub mod registration;
pub mod token;

pub use error::OAuthError;
pub use params::Params;
