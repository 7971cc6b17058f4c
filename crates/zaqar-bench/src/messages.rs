//! Message-post bodies of a chosen size, shared by the producers and the prefill.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

/// Builds message-post bodies: `{"messages":[{"ttl":3600,"body":{"data":"xxx","seq":n}}]}`,
/// each message body padded to `size` bytes.
pub(crate) struct MessageGen {
    size: usize,
    /// At least `size` bytes of padding, shared by every generator of the run.
    pad: Arc<str>,
    /// The "seq" of the next message (counted per generator).
    seq: u64,
}

impl MessageGen {
    pub(crate) fn new(size: usize, pad: Arc<str>) -> Self {
        MessageGen { size, pad, seq: 0 }
    }

    /// A whole post body with `n` messages.
    pub(crate) fn body(&mut self, n: usize) -> Bytes {
        let mut s = String::with_capacity(16 + n * (self.size + 48));
        s.push('{');
        self.push_messages(&mut s, n);
        s.push('}');
        Bytes::from(s)
    }

    /// Appends `"messages":[...]` with `n` messages to `s`.
    pub(crate) fn push_messages(&mut self, s: &mut String, n: usize) {
        s.reserve(16 + n * (self.size + 48));
        s.push_str("\"messages\":[");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            let seq = self.seq;
            self.seq += 1;
            let digits = seq.checked_ilog10().unwrap_or(0) as usize + 1;
            // {"data":"","seq":} is 18 bytes.
            let pad = self.size.saturating_sub(18 + digits).min(self.pad.len());
            s.push_str("{\"ttl\":3600,\"body\":{\"data\":\"");
            s.push_str(&self.pad[..pad]);
            let _ = write!(s, "\",\"seq\":{seq}}}}}");
        }
        s.push(']');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn message_size() {
        let mut g = MessageGen::new(100, Arc::from("x".repeat(100)));
        let body = g.body(2);
        let doc: Value = serde_json::from_slice(&body).unwrap();
        for m in doc["messages"].as_array().unwrap() {
            assert_eq!(serde_json::to_string(&m["body"]).unwrap().len(), 100);
            assert_eq!(m["ttl"], 3600);
        }
    }
}
