//! The server: configuration (`config`: files, environment, command line, the option
//! registry), the composition of store, service, notifier and transports (`app`), and the admin
//! listener (`admin`: metrics, probes, the web console). The `zaqar-server` binary runs it.

pub mod admin;
pub mod app;
pub mod config;
