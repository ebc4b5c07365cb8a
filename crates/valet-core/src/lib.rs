//! Valet's engine: orgs, users, apps and their policies, grants, tokens and keys.
//!
//! No HTTP and no SQL live here. The engine talks to storage through the [`store::Store`]
//! trait and gets time and randomness from an injected [`clock::Clock`] and [`rand::Random`],
//! so tests can run several engines side by side with their own databases and clocks.

pub mod cache;
pub mod clock;
pub mod engine;
pub mod ids;
pub mod keys;
pub mod model;
pub mod rand;
pub mod scope;
pub mod secret;
pub mod store;

/// The newest REST API version Valet serves (`vNN.0`).
pub const API_VERSION_LATEST: &str = "62.0";

pub use engine::{Engine, EngineConfig, EngineError};
