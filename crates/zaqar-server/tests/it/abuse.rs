//! Resource abuse over raw TCP: oversized bodies and heads, clients that trickle bytes, many
//! idle connections, deep JSON nesting, huge numbers, invalid UTF-8. Every case must end in a
//! clear 4xx or a closed connection, quickly, and the server must go on serving a well-behaved
//! client meanwhile and afterwards. Each test is bounded to a few seconds.

use zaqar_testkit as common;

use std::time::{Duration, Instant};

use common::{TestServer, CLIENT, PROJECT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single exchange may take before the test fails.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// What came back on a raw connection: the status of the first response, if any, and all the
/// bytes read until the server closed the connection (or the read timed out).
#[derive(Debug)]
struct Reply {
    status: Option<u16>,
    text: String,
    closed: bool,
}

fn status_of(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Reads until EOF or `limit`.
async fn read_all(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Sends `request` (write errors ignored: the server may answer and close before reading it
/// all) and reads what comes back.
async fn exchange(s: &TestServer, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr(s)).await.expect("connect");
    let _ = stream.write_all(request).await;
    let (bytes, closed) = read_all(&mut stream, EXCHANGE_TIMEOUT).await;
    Reply {
        status: status_of(&bytes),
        text: String::from_utf8_lossy(&bytes).into_owned(),
        closed,
    }
}

fn head(method: &str, path: &str, extra: &str, content_length: Option<usize>) -> String {
    let mut h = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nClient-ID: {CLIENT}\r\nX-Project-ID: {PROJECT}\r\n\
         Content-Type: application/json\r\nConnection: close\r\n{extra}"
    );
    if let Some(n) = content_length {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str("\r\n");
    h
}

fn request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = head(method, path, "", Some(body.len())).into_bytes();
    r.extend_from_slice(body);
    r
}

/// A well-behaved client: a message POST and a listing both work, promptly.
async fn assert_serving(s: &TestServer) {
    let started = Instant::now();
    let body = br#"{"messages": [{"body": {"ok": true}, "ttl": 300}]}"#;
    let r = exchange(s, &request("POST", "/v2/queues/healthy/messages", body)).await;
    assert_eq!(r.status, Some(201), "{}", r.text);
    let r = exchange(
        s,
        &request("GET", "/v2/queues/healthy/messages?echo=true", b""),
    )
    .await;
    assert_eq!(r.status, Some(200), "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a well-behaved client waited {:?}",
        started.elapsed()
    );
}

fn assert_client_error(r: &Reply, what: &str) {
    let status = r
        .status
        .unwrap_or_else(|| panic!("{what}: no response: {r:?}"));
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status}: {}",
        r.text
    );
}

/// A 4xx, or a connection the server closed without answering.
fn assert_refused(r: &Reply, what: &str) {
    match r.status {
        Some(status) => assert!(
            (400..500).contains(&status),
            "{what}: expected a 4xx, got {status}: {}",
            r.text
        ),
        None => assert!(r.closed, "{what}: neither an answer nor a close: {r:?}"),
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_reading_them() {
    let s = TestServer::start().await;
    let limit = s.service.limits().max_messages_post_size;
    // Announced far beyond the limit and never sent: answered at once, not waited for.
    let started = Instant::now();
    let h = head("POST", "/v2/queues/q/messages", "", Some(10_000_000_000));
    let r = exchange(&s, h.as_bytes()).await;
    assert_refused(&r, "a 10 GB Content-Length");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Sent in full, just over the limit.
    let pad = "x".repeat(limit);
    let body = format!(r#"{{"messages": [{{"body": "{pad}"}}]}}"#);
    let r = exchange(
        &s,
        &request("POST", "/v2/queues/q/messages", body.as_bytes()),
    )
    .await;
    assert_client_error(&r, "a message POST over max_messages_post_size");

    // Chunked, without a length, over the limit.
    let mut chunked = head(
        "POST",
        "/v2/queues/q/messages",
        "Transfer-Encoding: chunked\r\n",
        None,
    )
    .into_bytes();
    let chunk = vec![b'['; 64 * 1024];
    for _ in 0..(limit / chunk.len() + 2) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = exchange(&s, &chunked).await;
    assert_refused(&r, "a chunked body over the limit");

    // Queue metadata over max_queue_metadata, and a claim body over the small-body limit.
    let meta = format!(r#"{{"big": "{}"}}"#, "y".repeat(128 * 1024));
    let r = exchange(&s, &request("PUT", "/v2/queues/q2", meta.as_bytes())).await;
    assert_client_error(&r, "queue metadata over the limit");
    let claim = format!(r#"{{"ttl": 60, "pad": "{}"}}"#, "z".repeat(256 * 1024));
    let r = exchange(
        &s,
        &request("POST", "/v2/queues/q/claims", claim.as_bytes()),
    )
    .await;
    assert_client_error(&r, "a claim body over the small-body limit");
    assert_serving(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let s =
        TestServer::start_with(&[("drivers:transport:wsgi", "max_header_bytes", "16384")]).await;
    // One huge header.
    let big = format!("X-Big: {}\r\n", "a".repeat(100 * 1024));
    let r = exchange(&s, head("GET", "/v2/queues", &big, None).as_bytes()).await;
    assert_refused(&r, "a 100 KiB header");
    // Very many small headers.
    let many: String = (0..5000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = exchange(&s, head("GET", "/v2/queues", &many, None).as_bytes()).await;
    assert_refused(&r, "5,000 headers");
    // A huge request line.
    let path = format!("/v2/queues/q/messages?marker={}", "9".repeat(100 * 1024));
    let r = exchange(&s, head("GET", &path, "", None).as_bytes()).await;
    assert_refused(&r, "a 100 KiB request line");
    // Garbage instead of HTTP.
    let r = exchange(
        &s,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
    )
    .await;
    assert_refused(&r, "a TLS hello on the plain port");
    assert_serving(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn trickling_clients_are_cut_off_by_the_header_timeout() {
    let s = TestServer::start_with(&[("drivers:transport:wsgi", "header_read_timeout", "1")]).await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr(&s)).await.expect("connect");
    let request = head("GET", "/v2/queues", "", None).into_bytes();
    // One byte every 150 ms: the head would take ~20 s to arrive.
    let mut closed_after = None;
    for b in request.iter() {
        if slow.write_all(&[*b]).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        if started.elapsed() > Duration::from_millis(600)
            && started.elapsed() < Duration::from_millis(800)
        {
            // Meanwhile, others are served.
            assert_serving(&s).await;
        }
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    if closed_after.is_none() {
        // The write side may still be open a little after the close: read to be sure.
        let (bytes, closed) = read_all(&mut slow, Duration::from_secs(2)).await;
        assert!(
            closed,
            "the trickling connection is still open after {:?}",
            started.elapsed()
        );
        if let Some(status) = status_of(&bytes) {
            assert!((400..500).contains(&status), "{status}");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
    assert_serving(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn idle_connections_neither_starve_others_nor_live_forever() {
    let s = TestServer::start_with(&[
        ("drivers:transport:wsgi", "max_connections", "32"),
        ("drivers:transport:wsgi", "header_read_timeout", "1"),
    ])
    .await;
    // Every connection slot taken by a client that says nothing.
    let mut idle = Vec::new();
    for _ in 0..32 {
        idle.push(TcpStream::connect(addr(&s)).await.expect("connect"));
    }
    // A newcomer gets in once the silent ones time out (about a second).
    let started = Instant::now();
    let r = exchange(&s, &request("GET", "/v2/queues", b"")).await;
    assert_eq!(r.status, Some(200), "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the newcomer waited {:?}",
        started.elapsed()
    );
    // The idle ones were closed.
    for conn in idle.iter_mut().take(4) {
        let (_, closed) = read_all(conn, Duration::from_secs(2)).await;
        assert!(closed, "an idle connection is still open");
    }
    drop(idle);

    // Hundreds of idle connections under the default limit: others are served at once.
    let s2 =
        TestServer::start_with(&[("drivers:transport:wsgi", "header_read_timeout", "2")]).await;
    let mut many = Vec::new();
    for _ in 0..400 {
        many.push(TcpStream::connect(addr(&s2)).await.expect("connect"));
    }
    assert_serving(&s2).await;
    // Keep-alive connections that fall silent after a request are closed too.
    let mut kept = TcpStream::connect(addr(&s2)).await.expect("connect");
    let mut req = head("GET", "/v2/queues", "", None).replace("Connection: close\r\n", "");
    req.push_str("");
    kept.write_all(req.as_bytes()).await.expect("write");
    let (bytes, closed) = read_all(&mut kept, Duration::from_secs(5)).await;
    assert_eq!(status_of(&bytes), Some(200));
    assert!(closed, "an idle keep-alive connection was not closed");
    drop(many);
    s.stop().await;
    s2.stop().await;
}

#[tokio::test]
async fn deep_nesting_is_refused_everywhere() {
    let s = TestServer::start().await;
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let deep_obj = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    for n in [200usize, 100_000] {
        let body = format!(r#"{{"messages": [{{"body": {}}}]}}"#, deep(n));
        let r = exchange(
            &s,
            &request("POST", "/v2/queues/q/messages", body.as_bytes()),
        )
        .await;
        assert_client_error(&r, &format!("a message body nested {n} deep"));
        let body = format!(r#"{{"messages": [{{"body": {}}}]}}"#, deep_obj(n));
        let r = exchange(
            &s,
            &request("POST", "/v2/queues/q/messages", body.as_bytes()),
        )
        .await;
        assert_client_error(&r, &format!("a message body of objects nested {n} deep"));
    }
    let meta = format!(r#"{{"a": {}}}"#, deep(10_000));
    let r = exchange(&s, &request("PUT", "/v2/queues/deep", meta.as_bytes())).await;
    assert_client_error(&r, "deeply nested queue metadata");
    let r = exchange(&s, &request("PUT", "/v2/queues/deep", b"{}")).await;
    assert_eq!(r.status, Some(201), "{}", r.text);
    let patch = format!(
        r#"[{{"op": "add", "path": "/a", "value": {}}}]"#,
        deep(10_000)
    );
    let mut req = head("PATCH", "/v2/queues/deep", "", Some(patch.len()))
        .replace(
            "Content-Type: application/json",
            "Content-Type: application/openstack-messaging-v2.0-json-patch",
        )
        .into_bytes();
    req.extend_from_slice(patch.as_bytes());
    let r = exchange(&s, &req).await;
    assert_client_error(&r, "a deeply nested JSON-patch value");
    let claim = format!(r#"{{"ttl": 60, "grace": {}}}"#, deep(50_000));
    let r = exchange(
        &s,
        &request("POST", "/v2/queues/q/claims", claim.as_bytes()),
    )
    .await;
    assert_client_error(&r, "a deeply nested claim body");
    assert_serving(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn huge_numbers_are_refused() {
    let s = TestServer::start().await;
    let cases: &[(&str, &str, String)] = &[
        (
            "POST",
            "/v2/queues/q/messages",
            r#"{"messages": [{"body": 1, "ttl": 1e400}]}"#.into(),
        ),
        (
            "POST",
            "/v2/queues/q/messages",
            r#"{"messages": [{"body": 1, "ttl": 99999999999999999999999999}]}"#.into(),
        ),
        (
            "POST",
            "/v2/queues/q/messages",
            format!(r#"{{"messages": [{{"body": {}}}]}}"#, "9".repeat(50_000)),
        ),
        (
            "POST",
            "/v2/queues/q/messages",
            r#"{"messages": [{"body": 1, "ttl": -9223372036854775808}]}"#.into(),
        ),
        (
            "POST",
            "/v2/queues/q/claims",
            r#"{"ttl": 1e308, "grace": 60}"#.into(),
        ),
        (
            "POST",
            "/v2/queues/q/claims",
            r#"{"ttl": 18446744073709551616, "grace": 60}"#.into(),
        ),
        (
            "PUT",
            "/v2/queues/nums",
            r#"{"_default_message_ttl": 123456789012345678901234567890}"#.into(),
        ),
        (
            "GET",
            "/v2/queues/q/messages?limit=99999999999999999999999",
            String::new(),
        ),
        (
            "GET",
            "/v2/queues?limit=-9223372036854775809",
            String::new(),
        ),
    ];
    for (method, path, body) in cases {
        let r = exchange(&s, &request(method, path, body.as_bytes())).await;
        let what = format!("{method} {path} {}", &body[..body.len().min(80)]);
        assert_client_error(&r, &what);
    }
    assert_serving(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_refused() {
    let s = TestServer::start().await;
    // In a JSON body: raw bytes, and an escaped lone surrogate.
    let mut body = br#"{"messages": [{"body": ""#.to_vec();
    body.extend_from_slice(b"\xff\xfe\xc3\x28");
    body.extend_from_slice(br#""}]}"#);
    let r = exchange(&s, &request("POST", "/v2/queues/q/messages", &body)).await;
    assert_client_error(&r, "invalid UTF-8 in a message body");
    let body = br#"{"messages": [{"body": "\ud800"}]}"#;
    let r = exchange(&s, &request("POST", "/v2/queues/q/messages", body)).await;
    // Kept as raw text, an unpaired surrogate would be stored for every consumer to choke on.
    assert_client_error(&r, "a lone surrogate in a message body");
    let mut meta = br#"{"name": ""#.to_vec();
    meta.extend_from_slice(b"\x80\x80");
    meta.extend_from_slice(br#""}"#);
    let r = exchange(&s, &request("PUT", "/v2/queues/utf", &meta)).await;
    assert_client_error(&r, "invalid UTF-8 in queue metadata");
    // In the path (percent-encoded and raw), the query string and the headers.
    let r = exchange(&s, &request("GET", "/v2/queues/%ff%fe/messages", b"")).await;
    assert_client_error(&r, "invalid UTF-8 in a queue name");
    let mut raw_path = b"GET /v2/queues/\xff/stats HTTP/1.1\r\n".to_vec();
    raw_path.extend_from_slice(
        format!("Host: x\r\nClient-ID: {CLIENT}\r\nX-Project-ID: {PROJECT}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let r = exchange(&s, &raw_path).await;
    assert_refused(&r, "a raw non-ASCII byte in the path");
    let r = exchange(
        &s,
        &request("GET", "/v2/queues/q/messages?marker=%ff&limit=%c3%28", b""),
    )
    .await;
    assert_refused(&r, "invalid UTF-8 in the query string");
    let mut bad_header = b"GET /v2/queues HTTP/1.1\r\nHost: x\r\nClient-ID: \xff\xfe\r\n".to_vec();
    bad_header.extend_from_slice(
        format!("X-Project-ID: {PROJECT}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let r = exchange(&s, &bad_header).await;
    assert_client_error(&r, "invalid UTF-8 in Client-ID");
    let mut bad_project =
        format!("GET /v2/queues HTTP/1.1\r\nHost: x\r\nClient-ID: {CLIENT}\r\n").into_bytes();
    bad_project.extend_from_slice(b"X-Project-ID: \xc3\x28\r\nConnection: close\r\n\r\n");
    let r = exchange(&s, &bad_project).await;
    assert_client_error(&r, "invalid UTF-8 in X-Project-ID");
    assert_serving(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn a_flood_of_malformed_requests_leaves_the_server_serving() {
    // Blank lines before a request line are allowed (RFC 9112 §2.2): such a connection waits
    // for its request until the header timeout.
    let s = TestServer::start_with(&[("drivers:transport:wsgi", "header_read_timeout", "1")]).await;
    let garbage: Vec<Vec<u8>> = vec![
        b"\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"POST /v2/queues/q/messages HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /v2/queues/q/messages HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
            .to_vec(),
        b"POST /v2/queues/q/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        vec![0u8; 4096],
    ];
    let mut tasks = Vec::new();
    for i in 0..200 {
        let req = garbage[i % garbage.len()].clone();
        let a = addr(&s);
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(a).await.expect("connect");
            let _ = stream.write_all(&req).await;
            let (bytes, closed) = read_all(&mut stream, EXCHANGE_TIMEOUT).await;
            (status_of(&bytes), closed)
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let (status, closed) = t.await.expect("joined");
        let sent = String::from_utf8_lossy(&garbage[i % garbage.len()]);
        match status {
            Some(code) => assert!((400..500).contains(&code), "{code} for {sent:?}"),
            None => assert!(closed, "{sent:?} left the connection hanging"),
        }
    }
    assert_serving(&s).await;
    s.stop().await;
}
