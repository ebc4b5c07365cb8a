//! Valet's own pages: login, consent, logout, errors.
pub mod device;
pub mod pages;
pub mod templates;
