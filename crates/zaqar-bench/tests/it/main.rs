//! The `zaqar-bench` binary against a real server.

mod zaqar_bench;
