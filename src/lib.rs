//! A Rust implementation of the OpenStack Zaqar v2 messaging service.
//!
//! See `ARCHITECTURE.md` for the code map and the invariants.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod secret;
pub mod server;
pub mod service;
pub mod signing;
pub mod storage;
pub mod store;
pub mod wire;
pub mod ws;
