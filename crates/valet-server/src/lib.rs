//! Valet's HTTP surface.
pub mod ui;
