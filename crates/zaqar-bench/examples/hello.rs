//! A hello-world HTTP/1.1 server on hyper: the ceiling for any HTTP API on this machine.
//!
//! `scripts/bench-reference.sh` drives it with the same `zaqar-bench` scenarios as the real
//! servers, so "ours / hello-world" says how much of the machine's HTTP capacity the API
//! work costs. It does the least a JSON API must do: read the whole request body, then answer
//! a small fixed JSON document, on keep-alive connections, with one task per connection on a
//! multi-threaded Tokio runtime (the server's own set-up: `TCP_NODELAY`, HTTP/1.1, no
//! pipelining).
//!
//! Statuses follow the method so that `zaqar-bench` counts the answers as successes: `POST`
//! and `PUT` answer 201, `DELETE` 204, everything else 200; bodies are `{"messages":[]}`
//! (an empty claim or listing page for the tool).
//!
//! Run with `cargo run --release --example hello -- [ADDR]` (default `127.0.0.1:8890`; port
//! 0 picks a free port). It prints `listening on ADDR` once bound, and stops on Ctrl-C or
//! SIGTERM.

// A measurement program: its figures are its output on standard output.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"messages":[]}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match *req.method() {
        Method::POST | Method::PUT => StatusCode::CREATED,
        Method::DELETE => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    };
    // Read the whole body, as any API must before it can answer; an unreadable body is a 400.
    if req.into_body().collect().await.is_err() {
        return Ok(Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Full::new(Bytes::new()))
            .expect("a valid response"));
    }
    let body = if status == StatusCode::NO_CONTENT {
        Bytes::new()
    } else {
        Bytes::from_static(BODY)
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8890".to_string())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: keep serving the others.
                Err(_) => continue,
            },
            _ = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}
