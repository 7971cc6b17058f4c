//! The storage crate's integration tests, in one binary: the conformance suite against every
//! driver and pooled setup, and the drivers' fault and multi-node checks.

mod conformance_embedded;
mod conformance_mysql;
mod conformance_pooled;
mod conformance_postgres;
mod conformance_redis;
mod postgres_faults;
mod redis_sentinel;
mod service_longpoll;
