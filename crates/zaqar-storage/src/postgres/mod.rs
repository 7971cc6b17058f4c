//! The PostgreSQL driver (`[drivers] message_store = postgresql`); see `docs/postgresql.md`.
//!
//! Several API nodes may share one database. Every trait method is one transaction (most are a
//! single statement, which PostgreSQL runs as its own transaction), so a crash or a lost
//! connection never leaves half an operation behind, and moves between queues (dead-lettering,
//! redrive) are atomic without an outbox.
//!
//! - Queues are rows of `queues`; a queue's `last_marker` is its message counter, bumped with
//!   `UPDATE ... RETURNING` (an upsert that also creates the queue) by the statement that inserts
//!   the batch: markers are consecutive per queue and a batch becomes visible all at once.
//! - Concurrent posts to one queue on one node are combined: the first poster starts a task that
//!   inserts whatever posts are waiting in one transaction (each post's messages stay
//!   contiguous), then the next group, so a hot queue commits many posts per WAL flush instead of
//!   serialising one flush per post on the counter's row lock.
//! - Claims pick messages with `FOR UPDATE SKIP LOCKED`: concurrent claimers, on any node, never
//!   wait for each other and never take the same message.
//! - Time is the driver's [`Clock`](zaqar_core::clock::Clock), passed as a bind: no `now()` in SQL.
//! - Expired messages and claims are filtered by every statement (`expires > now`) and removed
//!   by a background sweep in bounded batches.
//!
//! The driver needs the cargo feature `postgres`; without it only [`PostgresStoreConfig`] and
//! [`valid_schema_name`] are here (so configuration still parses) and the engine selector
//! refuses the engine at start-up.

#[cfg(feature = "postgres")]
mod claims;
mod config;
#[cfg(feature = "postgres")]
mod errors;
#[cfg(feature = "postgres")]
mod gc;
#[cfg(feature = "postgres")]
mod lanes;
#[cfg(feature = "postgres")]
mod messages;
#[cfg(feature = "postgres")]
mod moves;
#[cfg(feature = "postgres")]
mod notify;
#[cfg(feature = "postgres")]
mod queues;
#[cfg(feature = "postgres")]
mod rows;
#[cfg(feature = "postgres")]
mod schema;
#[cfg(feature = "postgres")]
mod sql;
#[cfg(feature = "postgres")]
mod store;
#[cfg(feature = "postgres")]
mod subs;

pub use config::{valid_schema_name, PostgresStoreConfig};
/// Creates `schema` if given and applies every migration there (used by the management store).
#[cfg(feature = "postgres")]
pub(crate) use schema::migrate as migrate_schema;
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
