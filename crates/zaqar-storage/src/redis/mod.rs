//! The Redis message store (`[drivers] message_store = redis`). See `docs/redis.md` for the key
//! layout, the durability each Redis persistence setting gives, and how cross-queue moves stay
//! exactly-once.
//!
//! Every operation on a queue is one Lua script over keys that share the queue's hash slot, so
//! it is atomic on the server (also between API nodes sharing one Redis) and runs on one shard
//! of a Redis Cluster. Time comes from the service's [`Clock`](zaqar_core::clock::Clock) and is passed
//! to the scripts, never read from Redis. Every call is bounded by `operation_timeout_ms`: an
//! unreachable Redis gives `Error::Unavailable` (503), and the shared connection reconnects by
//! itself when Redis is back.
//!
//! Moves to another queue (dead-lettering, redrive) may cross slots. They go through an outbox
//! in the source queue's slot (written by the same script that takes the messages), are applied
//! to the target by a script that records a done-marker in the target's slot (so a replay is a
//! no-op), then removed from the outbox by the lease holder, then the marker is dropped. A
//! crash anywhere leaves a state from which the next drain (at once, or by the background sweep)
//! neither loses nor duplicates a message.
//!
//! The driver needs the cargo feature `redis`; without it only [`RedisStoreConfig`] is here (so
//! configuration still parses) and the engine selector refuses the engine at start-up.

#[cfg(feature = "redis")]
mod claims;
mod config;
#[cfg(feature = "redis")]
mod conn;
#[cfg(feature = "redis")]
mod gc;
#[cfg(feature = "redis")]
mod keys;
#[cfg(feature = "redis")]
mod messages;
#[cfg(feature = "redis")]
mod outbox;
#[cfg(feature = "redis")]
mod queues;
#[cfg(feature = "redis")]
mod records;
#[cfg(feature = "redis")]
mod scripts;
#[cfg(feature = "redis")]
mod store;
#[cfg(feature = "redis")]
mod subs;

pub use config::RedisStoreConfig;
#[cfg(feature = "redis")]
pub use store::{DrainStop, RedisStore};
