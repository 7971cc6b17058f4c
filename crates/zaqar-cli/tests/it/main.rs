//! The `zaqar` binary against a real server.

mod cli;
