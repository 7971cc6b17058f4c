//! The core of the Zaqar service: the domain model, the one error type with its mapping, the
//! clock, the storage traits every driver implements (with the rules they share), and the
//! transport-neutral service layer both transports call. It performs no I/O of its own except
//! through those traits, and knows nothing of HTTP, WebSocket, Redis, SQL or the configuration
//! file (see `ARCHITECTURE.md`).

pub mod clock;
pub mod error;
pub mod hub;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod operation;
pub mod policy;
pub mod secret;
pub mod service;
pub mod signing;
pub mod store;
#[cfg(feature = "testsuite")]
pub mod testsuite;
