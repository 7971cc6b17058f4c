//! The server's black-box tests, in one binary: a real server on 127.0.0.1:0 (or the
//! `zaqar-server` binary), driven over HTTP and WebSocket.

mod abuse;
mod compat;
mod config_check;
mod crash_recovery;
mod docs;
mod fuzz_inputs;
mod http_api;
mod http_claims;
mod http_lifecycle;
mod http_limits;
mod http_messages;
mod http_pools;
mod http_queues;
mod http_signed_urls;
mod http_subscriptions;
mod keystone_auth;
mod metrics;
mod operations;
mod postgres_multinode;
mod redis_fault;
mod redis_multinode;
mod scale_out;
mod scenarios;
mod tidy;
mod ws_protocol;
mod ws_robustness;
