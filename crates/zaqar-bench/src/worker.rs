//! The workers: each one loops over its role's work item (post, claim and delete, list,
//! long poll, WebSocket post) on its own connection and counts what falls inside the
//! measured window into its own statistics and timeline slot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::{Method, StatusCode, Uri};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;

use crate::cli::Args;
use crate::http::{status_error, Conn, Outcome, Target};
use crate::messages::MessageGen;
use crate::run::Run;
use crate::stats::{Op, WorkerStats};
use crate::timeline::Slot;
use crate::ws::WsConn;

/// What a worker does, over and over (see SCENARIOS in --help).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Producer,
    Consumer,
    Observer,
    /// A consumer that long-polls listings (`?wait=`) instead of claiming.
    Poller,
    /// A producer over a WebSocket connection (`message_post`).
    WsProducer,
}

// The parts of the server's responses that the workers read.

#[derive(Deserialize)]
struct HrefDoc {
    href: String,
}

#[derive(Deserialize)]
struct ClaimDoc {
    messages: Vec<HrefDoc>,
}

#[derive(Deserialize)]
struct LinkDoc {
    #[serde(default)]
    rel: String,
    href: String,
}

#[derive(Deserialize)]
struct ListDoc {
    #[serde(default)]
    messages: Vec<IgnoredAny>,
    #[serde(default)]
    links: Vec<LinkDoc>,
}

/// The body of every claim: the claim lasts 60 s, and its messages live at least 60 s (the
/// grace) longer.
const CLAIM_BODY: &[u8] = b"{\"ttl\":60,\"grace\":60}";

/// One worker task: its connection, its share of the run's counting, and the requests of its
/// role ready to send.
pub(crate) struct Worker {
    conn: Conn,
    run: Arc<Run>,
    stats: WorkerStats,
    gen: MessageGen,
    batch: usize,
    post_uri: Uri,
    claim_uri: Uri,
    claim_body: Bytes,
    list_uri: Uri,
    list_next: Option<Uri>,
    /// Long polling: the first page's URI, the next one, and the wait to add to "next".
    poll_uri: Uri,
    poll_next: Option<Uri>,
    wait: u32,
    /// WebSocket producers: the connection, and the start of each request envelope (up to
    /// the messages).
    ws: Option<WsConn>,
    ws_prefix: String,
    /// The worker's current timeline slot, merged into the run's when it moves on.
    slot: Option<(usize, Slot)>,
}

impl Worker {
    /// A worker of `role` on queue (or topic) `queue`, with a connection of its own (and a
    /// WebSocket to `ws_url` if it is a WebSocket producer).
    pub(crate) fn new(
        args: &Args,
        target: &Arc<Target>,
        run: &Arc<Run>,
        pad: &Arc<str>,
        queue: &str,
        role: Role,
        ws_url: &Arc<str>,
    ) -> Worker {
        let (q, collection) = (queue, args.scenario.collection());
        Worker {
            conn: Conn::new(target.clone()),
            run: run.clone(),
            stats: WorkerStats::default(),
            gen: MessageGen::new(args.message_size, pad.clone()),
            batch: args.batch,
            post_uri: target.uri(&format!("/v2/{collection}/{q}/messages")),
            claim_uri: target.uri(&format!("/v2/queues/{q}/claims?limit={}", args.claim_limit)),
            claim_body: Bytes::from_static(CLAIM_BODY),
            list_uri: target.uri(&format!(
                "/v2/queues/{q}/messages?echo=true&limit={}",
                args.list_limit
            )),
            list_next: None,
            poll_uri: target.uri(&format!(
                "/v2/queues/{q}/messages?limit={}&wait={}",
                args.claim_limit, args.wait
            )),
            poll_next: None,
            wait: args.wait,
            ws: (role == Role::WsProducer).then(|| WsConn::new(ws_url.clone(), target.timeout)),
            ws_prefix: format!(
                "{{\"action\":\"message_post\",\"headers\":{{\"Client-ID\":{},\"X-Project-ID\":{}}},\"body\":{{\"queue_name\":{},",
                json!(uuid::Uuid::new_v4().to_string()),
                json!(args.project),
                json!(q)
            ),
            slot: None,
        }
    }

    /// Whether a request of a work item counts: with --requests, if the item holds a
    /// ticket; otherwise if it started and finished inside the measured window.
    fn counts(&self, ticket: bool, o: &Outcome) -> bool {
        match self.run.measure_end {
            None => ticket,
            Some(end) => o.start >= self.run.measure_start && o.end <= end,
        }
    }

    /// Counts a finished request of `op` (`messages` moved if it succeeded).
    fn note(&mut self, op: Op, ok: bool, messages: u64, o: &Outcome) {
        self.run.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.run.failed.fetch_add(1, Ordering::Relaxed);
        }
        if self.stats.last_end.is_none_or(|t| t < o.end) {
            self.stats.last_end = Some(o.end);
        }
        let index = self.run.timeline.index(o.end);
        if self.slot.as_ref().is_some_and(|(i, _)| *i != index) {
            self.flush_slot();
        }
        let (_, slot) = self.slot.get_or_insert_with(|| (index, Slot::default()));
        slot.requests[op as usize] += 1;
        if ok {
            slot.messages[op as usize] += messages;
            slot.hist.record(
                o.end
                    .saturating_duration_since(o.start)
                    .as_micros()
                    .try_into()
                    .unwrap_or(u64::MAX),
            );
        } else {
            slot.errors += 1;
        }
    }

    /// Hands the current timeline slot over to the run's timeline.
    fn flush_slot(&mut self) {
        if let Some((index, slot)) = self.slot.take() {
            self.run.timeline.flush(index, &slot);
        }
    }

    /// Producer: posts --batch messages over HTTP.
    async fn post(&mut self, ticket: bool) {
        let body = self.gen.body(self.batch);
        let o = self
            .conn
            .call(Method::POST, self.post_uri.clone(), body)
            .await;
        self.count_post(ticket, o);
    }

    /// WebSocket producer: sends a message_post of --batch messages.
    async fn ws_post(&mut self, ticket: bool) {
        let mut text = self.ws_prefix.clone();
        self.gen.push_messages(&mut text, self.batch);
        text.push_str("}}");
        let ws = self
            .ws
            .as_mut()
            .expect("a WebSocket producer has a WebSocket");
        let o = ws.call(text).await;
        self.count_post(ticket, o);
    }

    /// Counts a post (HTTP or WebSocket): 201 is a success.
    fn count_post(&mut self, ticket: bool, o: Outcome) {
        if !self.counts(ticket, &o) {
            return;
        }
        let st = &mut self.stats.ops[Op::Post as usize];
        let ok = match &o.result {
            Ok((StatusCode::CREATED, _)) => {
                st.success(o.start, o.end, self.batch as u64);
                true
            }
            Ok((status, body)) => {
                st.error(status_error(*status, body));
                false
            }
            Err(e) => {
                st.error(e.clone());
                false
            }
        };
        self.note(Op::Post, ok, self.batch as u64, &o);
    }

    /// Consumer: claims, then deletes each claimed message; one claim cycle is one work item.
    async fn claim(&mut self, ticket: bool) {
        let o = self
            .conn
            .call(
                Method::POST,
                self.claim_uri.clone(),
                self.claim_body.clone(),
            )
            .await;
        let counted = self.counts(ticket, &o);
        let mut hrefs = Vec::new();
        let outcome: Result<Option<u64>, String> = match &o.result {
            Ok((StatusCode::CREATED, body)) => match serde_json::from_slice::<ClaimDoc>(body) {
                Ok(doc) => {
                    hrefs = doc.messages;
                    Ok(Some(hrefs.len() as u64))
                }
                Err(e) => Err(format!("HTTP 201 with an unreadable claim document: {e}")),
            },
            Ok((StatusCode::NO_CONTENT, _)) => Ok(None),
            Ok((status, body)) => Err(status_error(*status, body)),
            Err(e) => Err(e.clone()),
        };
        if counted {
            let st = &mut self.stats.ops[Op::Claim as usize];
            let claimed = hrefs.len() as u64;
            let ok = match outcome {
                Ok(Some(n)) => {
                    st.success(o.start, o.end, n);
                    if n == 0 {
                        st.empty += 1;
                    }
                    true
                }
                Ok(None) => {
                    st.success(o.start, o.end, 0);
                    st.empty += 1;
                    true
                }
                Err(e) => {
                    st.error(e);
                    false
                }
            };
            self.note(Op::Claim, ok, claimed, &o);
        }
        // Delete what was claimed, even past the end of the window (uncounted then), so
        // that no claimed message is left to come back when its claim expires.
        for m in hrefs {
            let uri = self.conn.target.uri(&m.href);
            let o = self.conn.call(Method::DELETE, uri, Bytes::new()).await;
            if !self.counts(ticket, &o) {
                continue;
            }
            let st = &mut self.stats.ops[Op::Delete as usize];
            let ok = match &o.result {
                Ok((StatusCode::NO_CONTENT, _)) => {
                    st.success(o.start, o.end, 1);
                    true
                }
                Ok((status, body)) => {
                    st.error(status_error(*status, body));
                    false
                }
                Err(e) => {
                    st.error(e.clone());
                    false
                }
            };
            self.note(Op::Delete, ok, 1, &o);
        }
    }

    /// Observer: lists the next page of messages, from the first page again after an empty
    /// one.
    async fn list(&mut self, ticket: bool) {
        let uri = self
            .list_next
            .clone()
            .unwrap_or_else(|| self.list_uri.clone());
        let o = self.conn.call(Method::GET, uri, Bytes::new()).await;
        let outcome: Result<u64, String> = match &o.result {
            Ok((StatusCode::OK, body)) => match serde_json::from_slice::<ListDoc>(body) {
                Ok(doc) => {
                    let n = doc.messages.len() as u64;
                    // Page on while there are messages; start over after an empty page.
                    self.list_next = if n == 0 {
                        None
                    } else {
                        doc.links
                            .iter()
                            .find(|l| l.rel == "next")
                            .map(|l| self.conn.target.uri(&l.href))
                    };
                    Ok(n)
                }
                Err(e) => {
                    self.list_next = None;
                    Err(format!("HTTP 200 with an unreadable listing: {e}"))
                }
            },
            Ok((StatusCode::NO_CONTENT, _)) => {
                self.list_next = None;
                Ok(0)
            }
            Ok((status, body)) => {
                self.list_next = None;
                Err(status_error(*status, body))
            }
            Err(e) => Err(e.clone()),
        };
        if !self.counts(ticket, &o) {
            return;
        }
        let st = &mut self.stats.ops[Op::List as usize];
        let listed = *outcome.as_ref().unwrap_or(&0);
        let ok = match outcome {
            Ok(n) => {
                st.success(o.start, o.end, n);
                if n == 0 {
                    st.empty += 1;
                }
                true
            }
            Err(e) => {
                st.error(e);
                false
            }
        };
        self.note(Op::List, ok, listed, &o);
    }

    /// Long-poll consumer: reads the queue forward, waiting up to --wait for new messages.
    async fn poll(&mut self, ticket: bool) {
        let uri = self
            .poll_next
            .clone()
            .unwrap_or_else(|| self.poll_uri.clone());
        let o = self.conn.call(Method::GET, uri, Bytes::new()).await;
        let outcome: Result<u64, String> = match &o.result {
            Ok((StatusCode::OK, body)) => match serde_json::from_slice::<ListDoc>(body) {
                Ok(doc) => {
                    // Read forward: the next page starts after what this one returned.
                    if let Some(next) = doc.links.iter().find(|l| l.rel == "next") {
                        let href = format!("{}&wait={}", next.href, self.wait);
                        self.poll_next = Some(self.conn.target.uri(&href));
                    }
                    Ok(doc.messages.len() as u64)
                }
                Err(e) => Err(format!("HTTP 200 with an unreadable listing: {e}")),
            },
            // Nothing arrived during the wait: keep the place.
            Ok((StatusCode::NO_CONTENT, _)) => Ok(0),
            Ok((status, body)) => Err(status_error(*status, body)),
            Err(e) => Err(e.clone()),
        };
        if !self.counts(ticket, &o) {
            return;
        }
        let st = &mut self.stats.ops[Op::Poll as usize];
        let got = *outcome.as_ref().unwrap_or(&0);
        let ok = match outcome {
            Ok(n) => {
                st.success(o.start, o.end, n);
                if n == 0 {
                    st.empty += 1;
                }
                true
            }
            Err(e) => {
                st.error(e);
                false
            }
        };
        self.note(Op::Poll, ok, got, &o);
    }

    /// Does work items of `role` until the run says stop; hands back what it counted.
    pub(crate) async fn run(mut self, role: Role) -> WorkerStats {
        loop {
            if self.run.stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            let ticket = match (self.run.limit, self.run.measure_end) {
                (Some(limit), _) => {
                    if now < self.run.measure_start {
                        false
                    } else if self.run.tickets.fetch_add(1, Ordering::Relaxed) >= limit {
                        break;
                    } else {
                        true
                    }
                }
                (None, Some(end)) => {
                    if now >= end {
                        break;
                    }
                    false
                }
                (None, None) => unreachable!("a run has a duration or a request count"),
            };
            match role {
                Role::Producer => self.post(ticket).await,
                Role::Consumer => self.claim(ticket).await,
                Role::Observer => self.list(ticket).await,
                Role::Poller => self.poll(ticket).await,
                Role::WsProducer => self.ws_post(ticket).await,
            }
        }
        self.flush_slot();
        self.stats
    }
}
