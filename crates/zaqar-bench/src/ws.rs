//! The WebSocket client of `--scenario ws`: one connection per worker, one request envelope
//! at a time, with the status read from the response envelope's headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use tokio::net::TcpStream;

use crate::http::{error_chain, Outcome};

/// A WebSocket connection to the server (tokio-tungstenite, no TLS).
type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// One WebSocket connection of a `ws` worker: one request at a time; reconnects when broken.
pub(crate) struct WsConn {
    url: Arc<str>,
    stream: Option<WsStream>,
    timeout: Duration,
}

/// The status in a WebSocket response envelope: `{"headers": {"status": N}, ...}`.
fn ws_status(text: &str) -> Option<StatusCode> {
    #[derive(Deserialize)]
    struct Headers {
        status: u16,
    }
    #[derive(Deserialize)]
    struct Envelope {
        headers: Headers,
    }
    let env: Envelope = serde_json::from_str(text).ok()?;
    StatusCode::from_u16(env.headers.status).ok()
}

impl WsConn {
    /// A connection to `url`, opened by the first request.
    pub(crate) fn new(url: Arc<str>, timeout: Duration) -> Self {
        WsConn {
            url,
            stream: None,
            timeout,
        }
    }

    /// Sends one request frame and waits for the next response frame (control frames are
    /// answered by the library and skipped).
    pub(crate) async fn call(&mut self, text: String) -> Outcome {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let t0 = Instant::now();
        if self.stream.is_none() {
            let connect = tokio_tungstenite::connect_async(&*self.url);
            let err = match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok((ws, _))) => {
                    self.stream = Some(ws);
                    None
                }
                Ok(Err(e)) => Some(format!("websocket connect: {}", error_chain(&e))),
                Err(_) => Some("websocket connect: timed out".to_string()),
            };
            if let Some(e) = err {
                let end = Instant::now();
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Outcome {
                    start: t0,
                    end,
                    result: Err(e),
                };
            }
        }
        let ws = self.stream.as_mut().expect("connected");
        let start = Instant::now();
        let exchange = async {
            ws.send(Message::text(text))
                .await
                .map_err(|e| format!("websocket send: {}", error_chain(&e)))?;
            loop {
                let frame = match ws.next().await {
                    Some(Ok(Message::Text(t))) => Bytes::copy_from_slice(t.as_bytes()),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Close(_))) | None => {
                        return Err("websocket closed by the server".to_string())
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("websocket: {}", error_chain(&e))),
                };
                let status = std::str::from_utf8(&frame)
                    .ok()
                    .and_then(ws_status)
                    .ok_or_else(|| "websocket: a frame without headers.status".to_string())?;
                return Ok((status, frame));
            }
        };
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "timed out after {:.1} s",
                self.timeout.as_secs_f64()
            )),
        };
        let end = Instant::now();
        if result.is_err() {
            self.stream = None;
        }
        Outcome { start, end, result }
    }
}
