//! Before and after the run: the setup requests (ping, queue creation, subscriptions,
//! prefill) that must succeed for a run to start, and the optional cleanup.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::{Method, StatusCode, Uri};
use serde_json::json;

use crate::cli::Args;
use crate::http::{status_error, Conn, Target};
use crate::messages::MessageGen;

/// Everything before the run: the server answers a ping, every queue (or topic) exists
/// (deleted first with --reset) with the --subscriber subscriptions, and the --prefill is
/// posted. The error is the whole message to print before exiting with status 2.
pub(crate) async fn prepare(
    args: &Args,
    target: &Arc<Target>,
    queues: &[String],
    pad: &Arc<str>,
) -> Result<(), String> {
    let mut conn = Conn::new(target.clone());
    setup_call(
        &mut conn,
        Method::GET,
        "/v2/ping",
        Bytes::new(),
        &[StatusCode::NO_CONTENT, StatusCode::OK],
    )
    .await
    .map_err(|e| format!("cannot reach the server at {}: {e}", args.url))?;
    let collection = args.scenario.collection();
    for q in queues {
        create(&mut conn, args, &format!("/v2/{collection}/{q}"))
            .await
            .map_err(|e| format!("setup failed: {e}"))?;
    }
    if args.prefill > 0 {
        prefill_queues(args, target, queues, pad).await?;
    }
    Ok(())
}

/// Creates the queue (or topic) at `path`, deleting it first with --reset, and subscribes
/// each --subscriber to it.
async fn create(conn: &mut Conn, args: &Args, path: &str) -> Result<(), String> {
    let mut steps = Vec::new();
    if args.reset {
        steps.push((Method::DELETE, vec![StatusCode::NO_CONTENT]));
    }
    steps.push((
        Method::PUT,
        vec![StatusCode::CREATED, StatusCode::NO_CONTENT],
    ));
    for (method, ok) in steps {
        setup_call(conn, method, path, Bytes::new(), &ok).await?;
    }
    for url in &args.subscribers {
        let body = json!({"subscriber": url, "ttl": 3600, "options": {}}).to_string();
        let path = format!("{path}/subscriptions");
        let ok = [StatusCode::CREATED, StatusCode::CONFLICT];
        setup_call(conn, Method::POST, &path, body.into(), &ok).await?;
    }
    Ok(())
}

/// --prefill: posts the messages into every queue, saying so on stderr unless --quiet.
async fn prefill_queues(
    args: &Args,
    target: &Arc<Target>,
    queues: &[String],
    pad: &Arc<str>,
) -> Result<(), String> {
    let t = Instant::now();
    let total = args.prefill * queues.len() as u64;
    if !args.quiet {
        eprintln!(
            "prefilling {} messages into each of {} queue(s)...",
            args.prefill,
            queues.len()
        );
    }
    prefill(
        target,
        args.scenario.collection(),
        queues,
        args.prefill,
        args.message_size,
        pad,
        args.connections,
    )
    .await?;
    if !args.quiet {
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "prefilled {total} messages in {s:.2} s ({:.0} msg/s)",
            total as f64 / s
        );
    }
    Ok(())
}

/// --cleanup: deletes the benchmark queues (or topics); a failure is only reported.
pub(crate) async fn cleanup(target: &Arc<Target>, collection: &str, queues: &[String]) {
    let mut conn = Conn::new(target.clone());
    for q in queues {
        let path = format!("/v2/{collection}/{q}");
        if let Err(e) = setup_call(
            &mut conn,
            Method::DELETE,
            &path,
            Bytes::new(),
            &[StatusCode::NO_CONTENT],
        )
        .await
        {
            eprintln!("zaqar-bench: cleanup: {e}");
        }
    }
}

/// One setup request that must succeed with one of `ok`.
async fn setup_call(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: Bytes,
    ok: &[StatusCode],
) -> Result<(), String> {
    let what = format!("{method} {path}");
    let uri = conn.target.uri(path);
    match conn.call(method, uri, body).await.result {
        Ok((status, _)) if ok.contains(&status) => Ok(()),
        Ok((status, body)) => Err(format!("{what}: {}", status_error(status, &body))),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Posts `per_queue` messages into each queue, in batches of 10, over up to 16 connections.
async fn prefill(
    target: &Arc<Target>,
    collection: &str,
    queues: &[String],
    per_queue: u64,
    size: usize,
    pad: &Arc<str>,
    conns: usize,
) -> Result<(), String> {
    const BATCH: u64 = 10;
    let batches = per_queue.div_ceil(BATCH);
    let total = batches * queues.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let uris: Arc<Vec<Uri>> = Arc::new(
        queues
            .iter()
            .map(|q| target.uri(&format!("/v2/{collection}/{q}/messages")))
            .collect(),
    );
    let workers = (conns.min(16) as u64).min(total).max(1);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (target, next, failed, uris) =
            (target.clone(), next.clone(), failed.clone(), uris.clone());
        let mut gen = MessageGen::new(size, pad.clone());
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let q = (k % uris.len() as u64) as usize;
                let b = k / uris.len() as u64;
                let n = if b == batches - 1 {
                    per_queue - BATCH * (batches - 1)
                } else {
                    BATCH
                };
                let body = gen.body(n as usize);
                let o = conn.call(Method::POST, uris[q].clone(), body).await;
                let err = match o.result {
                    Ok((StatusCode::CREATED, _)) => continue,
                    Ok((status, body)) => status_error(status, &body),
                    Err(e) => e,
                };
                failed.store(true, Ordering::Relaxed);
                return Err(format!("prefill POST {}: {err}", uris[q]));
            }
        }));
    }
    for h in handles {
        h.await.map_err(|e| format!("prefill task: {e}"))??;
    }
    Ok(())
}
