//! The OAuth and OpenID Connect endpoints, on Salesforce's paths.
pub mod authorize;
pub mod discovery;
pub mod introspect;
pub mod register;
pub mod revoke;
pub mod token;
pub mod userinfo;
