//! The HTTP/1.1 client of the workers and of the setup: where the server is (`Target`), one
//! keep-alive connection per worker (`Conn`), and the error texts of failed requests.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where and how to talk to the server; shared by every connection.
pub(crate) struct Target {
    addr: SocketAddr,
    pub(crate) host: HeaderValue,
    /// Path prefix of --url, without a trailing slash (usually empty).
    pub(crate) base: String,
    project: HeaderValue,
    /// X-Auth-Token of every request.
    pub(crate) token: Option<HeaderValue>,
    pub(crate) timeout: Duration,
}

impl Target {
    /// The URI of `path` on the server: under the --url path prefix if it is absolute.
    pub(crate) fn uri(&self, path: &str) -> Uri {
        let full = if self.base.is_empty() || !path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        Uri::try_from(full).unwrap_or_else(|_| Uri::from_static("/"))
    }
}

// The headers every request carries besides Host and Content-Type.
static CLIENT_ID: HeaderName = HeaderName::from_static("client-id");
static PROJECT_ID: HeaderName = HeaderName::from_static("x-project-id");
static AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// What came of one request: when it was sent and finished, and the status and body or an
/// error text.
pub(crate) struct Outcome {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) result: Result<(StatusCode, Bytes), String>,
}

/// One keep-alive HTTP/1.1 connection with its own Client-ID; reconnects when broken.
pub(crate) struct Conn {
    pub(crate) target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    client_id: HeaderValue,
}

/// The text of an error and of each of its sources that adds something new.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            let _ = write!(s, ": {c}");
        }
        src = cause.source();
    }
    s
}

impl Conn {
    pub(crate) fn new(target: Arc<Target>) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Conn {
            target,
            sender: None,
            client_id: HeaderValue::from_str(&id).expect("a UUID is a valid header value"),
        }
    }

    /// Opens a new connection (TCP without Nagle, then the HTTP/1.1 handshake).
    async fn connect(&mut self) -> Result<(), String> {
        let connect = async {
            let stream = TcpStream::connect(self.target.addr)
                .await
                .map_err(|e| format!("connect: {}", error_chain(&e)))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {}", error_chain(&e)))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, String>(sender)
        };
        match tokio::time::timeout(self.target.timeout, connect).await {
            Ok(Ok(sender)) => {
                self.sender = Some(sender);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err("connect: timed out".into()),
        }
    }

    /// A connection ready to take a request: the kept-alive one, or a new one if the server
    /// closed it meanwhile.
    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        for _ in 0..2 {
            if self.sender.is_none() {
                self.connect().await?;
            }
            let sender = self.sender.as_mut().expect("connected");
            let ready = tokio::time::timeout(self.target.timeout, sender.ready()).await;
            match ready {
                Ok(Ok(())) => return Ok(self.sender.as_mut().expect("connected")),
                Ok(Err(_)) => self.sender = None,
                Err(_) => {
                    self.sender = None;
                    return Err("connection: timed out waiting to send".into());
                }
            }
        }
        Err("connection: closed by the server twice in a row".into())
    }

    /// Sends one request with the headers every request carries, and reads the whole
    /// response; a failed or timed-out exchange drops the connection.
    pub(crate) async fn call(&mut self, method: Method, uri: Uri, body: Bytes) -> Outcome {
        let t0 = Instant::now();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let h = req.headers_mut();
        h.insert(HOST, self.target.host.clone());
        h.insert(CLIENT_ID.clone(), self.client_id.clone());
        h.insert(PROJECT_ID.clone(), self.target.project.clone());
        if let Some(token) = &self.target.token {
            h.insert(AUTH_TOKEN.clone(), token.clone());
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let timeout = self.target.timeout;
        let sender = match self.ready().await {
            Ok(s) => s,
            Err(e) => {
                let end = Instant::now();
                // Do not spin on a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Outcome {
                    start: t0,
                    end,
                    result: Err(e),
                };
            }
        };
        let start = Instant::now();
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request: {}", error_chain(&e)))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("response body: {}", error_chain(&e)))?
                .to_bytes();
            Ok((status, body))
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {:.1} s", timeout.as_secs_f64())),
        };
        let end = Instant::now();
        if result.is_err() {
            self.sender = None;
        }
        Outcome { start, end, result }
    }
}

/// The error text of an unexpected status: code and the start of the body.
pub(crate) fn status_error(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut snippet: String = text.chars().take(160).collect();
    if snippet.len() < text.len() {
        snippet.push('…');
    }
    if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    }
}

/// The server of `url` (http only), with `project` and `timeout` for every request.
pub(crate) async fn resolve(url: &str, project: &str, timeout: Duration) -> Result<Target, String> {
    let uri: Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("--url {url:?}: scheme {other} is not supported")),
        None => return Err(format!("--url {url:?}: expected http://HOST[:PORT][/PATH]")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--url {url:?}: no host"))?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}: no address"))?;
    let host_header = authority.as_str().rsplit('@').next().unwrap_or(host);
    Ok(Target {
        addr,
        host: HeaderValue::from_str(host_header).map_err(|e| format!("--url: {e}"))?,
        base: uri.path().trim_end_matches('/').to_string(),
        project: HeaderValue::from_str(project).map_err(|e| format!("--project: {e}"))?,
        token: None,
        timeout,
    })
}
