//! A real WebSocket client for the black-box tests (tokio-tungstenite), and the `Transport`
//! abstraction that lets one scenario run over HTTP and over WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{TestServer, CLIENT, PROJECT};

/// How long a test waits for a frame before failing.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(20);

/// One response frame.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// The echoed `request`.
    pub request: Value,
    /// Whether it came as a binary (MessagePack) frame.
    pub binary: bool,
}

impl Reply {
    fn from_doc(doc: Value, binary: bool) -> Reply {
        let status = doc["headers"]["status"]
            .as_u64()
            .unwrap_or_else(|| panic!("no headers.status in {doc}")) as u16;
        Reply {
            status,
            body: doc["body"].clone(),
            request: doc["request"].clone(),
            binary,
        }
    }

    /// The `error` text of an error body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

/// What the server did with the connection instead of answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Closed {
        code: u16,
        reason: String,
    },
    /// Closed without a close frame (reset or EOF).
    Dropped,
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub client_id: String,
    pub project: String,
}

/// The standard request headers.
pub fn headers() -> Value {
    json!({"Client-ID": CLIENT, "X-Project-ID": PROJECT})
}

/// `{"action", "headers", "body"}` with the standard headers.
pub fn envelope(action: &str, body: Value) -> Value {
    json!({"action": action, "headers": headers(), "body": body})
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("WebSocket connect to {url}: {e}"));
        WsClient {
            ws,
            client_id: CLIENT.to_string(),
            project: PROJECT.to_string(),
        }
    }

    /// Connects to the server's WebSocket listener.
    pub async fn to(s: &TestServer) -> WsClient {
        Self::connect(&format!("{}/", s.ws_base)).await
    }

    pub async fn send(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send frame");
    }

    /// Sends a frame; the server may have gone away.
    pub async fn try_send(
        &mut self,
        msg: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(msg).await
    }

    pub async fn send_json(&mut self, doc: &Value) {
        self.send(Message::text(doc.to_string())).await;
    }

    pub async fn send_msgpack(&mut self, doc: &Value) {
        let bytes = rmp_serde::to_vec(doc).expect("msgpack");
        self.send(Message::binary(bytes)).await;
    }

    /// The next response frame (pings are answered and skipped).
    pub async fn recv(&mut self) -> Reply {
        match self.next_frame().await {
            Ok(r) => r,
            Err(e) => panic!("connection ended instead of a response: {e:?}"),
        }
    }

    /// The next response, or how the connection ended.
    pub async fn next_frame(&mut self) -> Result<Reply, Ended> {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let doc: Value = serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {t}"));
                    return Ok(Reply::from_doc(doc, false));
                }
                Some(Ok(Message::Binary(b))) => {
                    let doc: Value =
                        rmp_serde::from_slice(&b).expect("response is not MessagePack");
                    return Ok(Reply::from_doc(doc, true));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(match frame {
                        Some(CloseFrame { code, reason }) => Ended::Closed {
                            code: code.into(),
                            reason: reason.to_string(),
                        },
                        None => Ended::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    })
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// The next data frame as it came (for notifications, which have no envelope).
    pub async fn next_message(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a frame");
            match msg {
                Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return m,
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// Waits for the connection to end, skipping responses.
    pub async fn ended(&mut self) -> Ended {
        loop {
            if let Err(e) = self.next_frame().await {
                return e;
            }
        }
    }

    /// Sends a JSON request with this client's headers and returns its response.
    pub async fn call(&mut self, action: &str, body: Value) -> Reply {
        let doc = json!({
            "action": action,
            "headers": {"Client-ID": self.client_id, "X-Project-ID": self.project},
            "body": body,
        });
        self.send_json(&doc).await;
        self.recv().await
    }

    /// The same over MessagePack.
    pub async fn call_msgpack(&mut self, action: &str, body: Value) -> Reply {
        let doc = json!({
            "action": action,
            "headers": {"Client-ID": self.client_id, "X-Project-ID": self.project},
            "body": body,
        });
        self.send_msgpack(&doc).await;
        self.recv().await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

// ----- The transport abstraction of the scenario tests ------------------------------------

/// A message as a scenario sees it, whatever the transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub id: String,
    pub body: Value,
    pub ttl: i64,
    pub age: i64,
    /// The live claim holding it (HTTP: the `claim_id` of its href).
    pub claim_id: Option<String>,
}

/// One operation of the API, in transport-neutral terms.
#[derive(Debug, Clone)]
pub enum Op<'a> {
    CreateQueue {
        queue: &'a str,
        metadata: Option<Value>,
    },
    DeleteQueue {
        queue: &'a str,
    },
    /// The queue's metadata (HTTP adds the reserved defaults, WebSocket shows it as stored).
    GetQueue {
        queue: &'a str,
    },
    ListQueues {
        limit: Option<i64>,
        detailed: bool,
    },
    Stats {
        queue: &'a str,
    },
    Purge {
        queue: &'a str,
    },
    Post {
        queue: &'a str,
        messages: Value,
    },
    List {
        queue: &'a str,
        echo: bool,
        include_claimed: bool,
        limit: Option<i64>,
    },
    Get {
        queue: &'a str,
        id: &'a str,
    },
    GetMany {
        queue: &'a str,
        ids: &'a [String],
    },
    Delete {
        queue: &'a str,
        id: &'a str,
        claim_id: Option<&'a str>,
    },
    DeleteMany {
        queue: &'a str,
        ids: &'a [String],
    },
    Pop {
        queue: &'a str,
        count: i64,
    },
    Claim {
        queue: &'a str,
        ttl: Option<i64>,
        grace: Option<i64>,
        limit: Option<i64>,
    },
    GetClaim {
        queue: &'a str,
        claim_id: &'a str,
    },
    Renew {
        queue: &'a str,
        claim_id: &'a str,
        ttl: i64,
        grace: i64,
    },
    Release {
        queue: &'a str,
        claim_id: &'a str,
    },
}

/// The normalised result of an operation.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub status: u16,
    /// The body as the transport returned it.
    pub body: Value,
    /// New message ids (post).
    pub ids: Vec<String>,
    /// Messages (list, get, get many, pop, claim, get claim).
    pub messages: Vec<Msg>,
    /// The new claim's id (claim).
    pub claim_id: Option<String>,
    /// Queue names (list queues).
    pub names: Vec<String>,
    /// Stats: (total, claimed, free).
    pub stats: Option<(u64, u64, u64)>,
    /// The detail of an error (HTTP `description`, WebSocket `exception` or `error`).
    pub error: Option<String>,
}

impl Outcome {
    pub fn ids(&self) -> Vec<String> {
        self.messages.iter().map(|m| m.id.clone()).collect()
    }

    pub fn expect(self, status: u16) -> Outcome {
        assert_eq!(self.status, status, "unexpected status: {self:?}");
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    WebSocket,
}

/// A way to talk to the server. Scenarios are written once against it.
pub trait Transport {
    fn kind(&self) -> Kind;
    fn server(&self) -> &TestServer;
    fn call(&mut self, op: Op<'_>) -> impl std::future::Future<Output = Outcome>;
}

fn claim_of_href(href: &str) -> Option<String> {
    href.split_once("claim_id=")
        .map(|(_, c)| c.split('&').next().unwrap_or(c).to_string())
}

fn msg_of(v: &Value) -> Msg {
    let claim_id = match v.get("claim_id") {
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => None,
        None => v["href"].as_str().and_then(claim_of_href),
    };
    Msg {
        id: v["id"].as_str().expect("message id").to_string(),
        body: v["body"].clone(),
        ttl: v["ttl"].as_i64().unwrap_or_default(),
        age: v["age"].as_i64().unwrap_or_default(),
        claim_id,
    }
}

fn msgs_of(v: &Value) -> Vec<Msg> {
    v.as_array()
        .map(|a| a.iter().map(msg_of).collect())
        .unwrap_or_default()
}

fn stats_of(v: &Value) -> Option<(u64, u64, u64)> {
    let m = &v["messages"];
    Some((
        m["total"].as_u64()?,
        m["claimed"].as_u64()?,
        m["free"].as_u64()?,
    ))
}

/// HTTP (reqwest) against the server's HTTP listener.
pub struct Http<'s> {
    pub s: &'s TestServer,
}

impl Transport for Http<'_> {
    fn kind(&self) -> Kind {
        Kind::Http
    }

    fn server(&self) -> &TestServer {
        self.s
    }

    async fn call(&mut self, op: Op<'_>) -> Outcome {
        let (method, path, body) = http_request(&op);
        let (status, location, body) = send_http(self.s, method, &path, body).await;
        http_outcome(&op, status, location.as_deref(), body)
    }
}

/// The method, path and JSON body of `op` over HTTP.
fn http_request(op: &Op<'_>) -> (Method, String, Option<Value>) {
    let q = |queue: &str| format!("/v2/queues/{queue}");
    match op {
        Op::CreateQueue { queue, metadata } => (Method::PUT, q(queue), metadata.clone()),
        Op::DeleteQueue { queue } => (Method::DELETE, q(queue), None),
        Op::GetQueue { queue } => (Method::GET, q(queue), None),
        Op::ListQueues { limit, detailed } => {
            let mut p = format!("/v2/queues?detailed={detailed}");
            if let Some(l) = limit {
                p.push_str(&format!("&limit={l}"));
            }
            (Method::GET, p, None)
        }
        Op::Stats { queue } => (Method::GET, format!("{}/stats", q(queue)), None),
        Op::Purge { queue } => (Method::POST, format!("{}/purge", q(queue)), None),
        Op::Post { queue, messages } => (
            Method::POST,
            format!("{}/messages", q(queue)),
            Some(json!({ "messages": messages })),
        ),
        Op::List {
            queue,
            echo,
            include_claimed,
            limit,
        } => {
            let mut p = format!(
                "{}/messages?echo={echo}&include_claimed={include_claimed}",
                q(queue)
            );
            if let Some(l) = limit {
                p.push_str(&format!("&limit={l}"));
            }
            (Method::GET, p, None)
        }
        Op::Get { queue, id } => (Method::GET, format!("{}/messages/{id}", q(queue)), None),
        Op::GetMany { queue, ids } => (
            Method::GET,
            format!("{}/messages?ids={}", q(queue), ids.join(",")),
            None,
        ),
        Op::Delete {
            queue,
            id,
            claim_id,
        } => {
            let mut p = format!("{}/messages/{id}", q(queue));
            if let Some(c) = claim_id {
                p.push_str(&format!("?claim_id={c}"));
            }
            (Method::DELETE, p, None)
        }
        Op::DeleteMany { queue, ids } => (
            Method::DELETE,
            format!("{}/messages?ids={}", q(queue), ids.join(",")),
            None,
        ),
        Op::Pop { queue, count } => (
            Method::DELETE,
            format!("{}/messages?pop={count}", q(queue)),
            None,
        ),
        Op::Claim {
            queue,
            ttl,
            grace,
            limit,
        } => {
            let mut p = format!("{}/claims", q(queue));
            if let Some(l) = limit {
                p.push_str(&format!("?limit={l}"));
            }
            let mut b = serde_json::Map::new();
            if let Some(t) = ttl {
                b.insert("ttl".into(), json!(t));
            }
            if let Some(g) = grace {
                b.insert("grace".into(), json!(g));
            }
            (Method::POST, p, Some(Value::Object(b)))
        }
        Op::GetClaim { queue, claim_id } => {
            (Method::GET, format!("{}/claims/{claim_id}", q(queue)), None)
        }
        Op::Renew {
            queue,
            claim_id,
            ttl,
            grace,
        } => (
            Method::PATCH,
            format!("{}/claims/{claim_id}", q(queue)),
            Some(json!({"ttl": ttl, "grace": grace})),
        ),
        Op::Release { queue, claim_id } => (
            Method::DELETE,
            format!("{}/claims/{claim_id}", q(queue)),
            None,
        ),
    }
}

/// Sends one request; returns its status, its `Location` header and its body (JSON, else the
/// text as a string, `null` when empty).
async fn send_http(
    s: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut req = s.req(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("HTTP request");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.expect("HTTP body");
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, location, body)
}

/// The queue names of a queue listing.
fn names_of(body: &Value) -> Vec<String> {
    body["queues"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|q| q["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The outcome of `op` from an HTTP response.
fn http_outcome(op: &Op<'_>, status: u16, location: Option<&str>, body: Value) -> Outcome {
    let mut out = Outcome {
        status,
        body: body.clone(),
        ..Default::default()
    };
    if status >= 400 {
        out.error = body["description"].as_str().map(str::to_string);
        return out;
    }
    match op {
        Op::ListQueues { .. } => out.names = names_of(&body),
        Op::Stats { .. } => out.stats = stats_of(&body),
        Op::Post { .. } => {
            out.ids = body["resources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| super::last_segment(r.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
        }
        Op::Get { .. } => out.messages = vec![msg_of(&body)],
        Op::List { .. } | Op::GetMany { .. } | Op::Pop { .. } | Op::GetClaim { .. } => {
            out.messages = msgs_of(&body["messages"]);
        }
        Op::Claim { .. } => {
            out.messages = msgs_of(&body["messages"]);
            out.claim_id = location.map(super::last_segment);
        }
        _ => {}
    }
    out
}

/// WebSocket (a real client on the WebSocket listener), JSON or MessagePack frames.
pub struct Ws<'s> {
    pub s: &'s TestServer,
    pub client: WsClient,
    pub msgpack: bool,
}

impl<'s> Ws<'s> {
    pub async fn json(s: &'s TestServer) -> Ws<'s> {
        Ws {
            s,
            client: WsClient::to(s).await,
            msgpack: false,
        }
    }

    pub async fn msgpack(s: &'s TestServer) -> Ws<'s> {
        Ws {
            s,
            client: WsClient::to(s).await,
            msgpack: true,
        }
    }
}

impl Transport for Ws<'_> {
    fn kind(&self) -> Kind {
        Kind::WebSocket
    }

    fn server(&self) -> &TestServer {
        self.s
    }

    async fn call(&mut self, op: Op<'_>) -> Outcome {
        let (action, body) = ws_request(&op);
        let reply = if self.msgpack {
            self.client.call_msgpack(action, body.clone()).await
        } else {
            self.client.call(action, body.clone()).await
        };
        assert_eq!(
            reply.binary, self.msgpack,
            "response frame type must mirror the request"
        );
        assert_eq!(reply.request["action"], action, "echoed request");
        assert_eq!(reply.request["body"], body, "echoed request body");
        ws_outcome(&op, &reply)
    }
}

/// The action and body of `op` over WebSocket.
fn ws_request(op: &Op<'_>) -> (&'static str, Value) {
    match op {
        Op::CreateQueue { queue, metadata } => {
            let mut b = json!({ "queue_name": queue });
            if let Some(m) = metadata {
                b["metadata"] = m.clone();
            }
            ("queue_create", b)
        }
        Op::DeleteQueue { queue } => ("queue_delete", json!({ "queue_name": queue })),
        Op::GetQueue { queue } => ("queue_get", json!({ "queue_name": queue })),
        Op::ListQueues { limit, detailed } => {
            let mut b = json!({ "detailed": detailed });
            if let Some(l) = limit {
                b["limit"] = json!(l);
            }
            ("queue_list", b)
        }
        Op::Stats { queue } => ("queue_get_stats", json!({ "queue_name": queue })),
        Op::Purge { queue } => ("queue_purge", json!({ "queue_name": queue })),
        Op::Post { queue, messages } => (
            "message_post",
            json!({"queue_name": queue, "messages": messages}),
        ),
        Op::List {
            queue,
            echo,
            include_claimed,
            limit,
        } => {
            let mut b =
                json!({"queue_name": queue, "echo": echo, "include_claimed": include_claimed});
            if let Some(l) = limit {
                b["limit"] = json!(l);
            }
            ("message_list", b)
        }
        Op::Get { queue, id } => (
            "message_get",
            json!({"queue_name": queue, "message_id": id}),
        ),
        Op::GetMany { queue, ids } => (
            "message_get_many",
            json!({"queue_name": queue, "message_ids": ids}),
        ),
        Op::Delete {
            queue,
            id,
            claim_id,
        } => {
            let mut b = json!({"queue_name": queue, "message_id": id});
            if let Some(c) = claim_id {
                b["claim_id"] = json!(c);
            }
            ("message_delete", b)
        }
        Op::DeleteMany { queue, ids } => (
            "message_delete_many",
            json!({"queue_name": queue, "message_ids": ids}),
        ),
        Op::Pop { queue, count } => (
            "message_delete_many",
            json!({"queue_name": queue, "pop": count}),
        ),
        Op::Claim {
            queue,
            ttl,
            grace,
            limit,
        } => {
            let mut b = json!({ "queue_name": queue });
            if let Some(t) = ttl {
                b["ttl"] = json!(t);
            }
            if let Some(g) = grace {
                b["grace"] = json!(g);
            }
            if let Some(l) = limit {
                b["limit"] = json!(l);
            }
            ("claim_create", b)
        }
        Op::GetClaim { queue, claim_id } => (
            "claim_get",
            json!({"queue_name": queue, "claim_id": claim_id}),
        ),
        Op::Renew {
            queue,
            claim_id,
            ttl,
            grace,
        } => (
            "claim_update",
            json!({"queue_name": queue, "claim_id": claim_id, "ttl": ttl, "grace": grace}),
        ),
        Op::Release { queue, claim_id } => (
            "claim_delete",
            json!({"queue_name": queue, "claim_id": claim_id}),
        ),
    }
}

/// The outcome of `op` from a WebSocket response.
fn ws_outcome(op: &Op<'_>, reply: &Reply) -> Outcome {
    let b = reply.body.clone();
    let mut out = Outcome {
        status: reply.status,
        body: b.clone(),
        ..Default::default()
    };
    if reply.status >= 400 {
        out.error = b["exception"]
            .as_str()
            .or(b["error"].as_str())
            .map(str::to_string);
        // queue_get_stats answers a missing queue with 404 and zero counts.
        if let Op::Stats { .. } = op {
            out.stats = stats_of(&b);
        }
        return out;
    }
    match op {
        Op::ListQueues { .. } => out.names = names_of(&b),
        Op::Stats { .. } => out.stats = stats_of(&b),
        Op::Post { .. } => {
            out.ids = b["message_ids"]
                .as_array()
                .map(|a| a.iter().map(|i| i.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
        }
        Op::Get { .. } => out.messages = vec![msg_of(&b["messages"])],
        Op::List { .. } | Op::GetMany { .. } | Op::Pop { .. } | Op::GetClaim { .. } => {
            out.messages = msgs_of(&b["messages"]);
        }
        Op::Claim { .. } => {
            out.messages = msgs_of(&b["messages"]);
            out.claim_id = b["claim_id"].as_str().map(str::to_string);
        }
        _ => {}
    }
    out
}
