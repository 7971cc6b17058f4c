//! Message ids, the same in every driver: 32 lower-case hex digits, the message's marker in its
//! queue, then a random suffix. The suffix makes ids of a deleted and re-created queue differ
//! even where markers repeat.

use std::fmt;

/// A message id, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub marker: u64,
    pub suffix: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, v: u64) {
    for shift in (0..16).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xf) as usize] as char);
    }
}

impl MessageId {
    pub fn new(marker: u64, suffix: u64) -> MessageId {
        MessageId { marker, suffix }
    }

    /// Parses an id as clients send it (hex digits of either case); `None` for anything else.
    pub fn parse(id: &str) -> Option<MessageId> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(MessageId {
            marker: u64::from_str_radix(&id[..16], 16).ok()?,
            suffix: u64::from_str_radix(&id[16..], 16).ok()?,
        })
    }

    /// The 16 hex digits of a suffix, as a driver may store it on its own.
    pub fn suffix_hex(suffix: u64) -> String {
        let mut out = String::with_capacity(16);
        push_hex(&mut out, suffix);
        out
    }

    /// A suffix stored as [`MessageId::suffix_hex`] wrote it.
    pub fn parse_suffix(hex: &str) -> Option<u64> {
        if hex.len() != 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    }

    /// The id's text, without the formatting machinery (it is built for every posted message,
    /// on a shard's writer thread).
    pub fn text(self) -> String {
        let mut out = String::with_capacity(32);
        push_hex(&mut out, self.marker);
        push_hex(&mut out, self.suffix);
        out
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_malformed_text() {
        let id = MessageId::new(42, 0xdead_beef).text();
        assert_eq!(id, "000000000000002a00000000deadbeef");
        assert_eq!(MessageId::parse(&id), Some(MessageId::new(42, 0xdead_beef)));
        assert_eq!(
            MessageId::parse(&id.to_uppercase()),
            Some(MessageId::new(42, 0xdead_beef))
        );
        assert_eq!(MessageId::parse("xyz"), None);
        assert_eq!(MessageId::parse(&"g".repeat(32)), None);
        assert_eq!(MessageId::parse(&format!("{id}0")), None);
        for (m, x) in [(0, 0), (u64::MAX, 1), (0x0123_4567_89ab_cdef, u64::MAX)] {
            assert_eq!(MessageId::new(m, x).text(), format!("{m:016x}{x:016x}"));
            assert_eq!(MessageId::suffix_hex(x), format!("{x:016x}"));
            assert_eq!(MessageId::parse_suffix(&MessageId::suffix_hex(x)), Some(x));
        }
        assert_eq!(MessageId::parse_suffix("abc"), None);
    }
}
