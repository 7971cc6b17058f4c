//! Message checksums (`[DEFAULT] enable_checksum`): `MD5:` + the hex MD5 of the body serialised
//! the way Python's `json.dumps` does by default, so checksums match the reference byte for byte.
//!
//! Python's default output: `", "` and `": "` separators, keys in the order received (a repeated
//! key keeps its first position and its last value), non-ASCII escaped as `\uXXXX` (UTF-16 code
//! units, lowercase hex), integers exact, floats in `repr` form.

use md5::{Digest, Md5};

/// The checksum of a body given as JSON text, or `None` for a `null` body.
pub fn checksum(body_json: &str) -> Option<String> {
    let text = python_json(body_json)?;
    if text == "null" {
        return None;
    }
    let digest = Md5::digest(text.as_bytes());
    let mut out = String::with_capacity(36);
    out.push_str("MD5:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    Some(out)
}

/// Re-serialises valid JSON text as Python's `json.dumps` would. `None` if the text is not
/// valid JSON.
pub fn python_json(text: &str) -> Option<String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return None;
    }
    Some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Option<String> {
        self.ws();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                let units = self.string()?;
                Some(escape(&units))
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str) -> Option<String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Some(word.to_string())
        } else {
            None
        }
    }

    fn object(&mut self) -> Option<String> {
        self.i += 1;
        let mut members: Vec<(Vec<u16>, String)> = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some("{}".into());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let value = self.value()?;
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        let parts: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("{}: {v}", escape(&k)))
            .collect();
        Some(format!("{{{}}}", parts.join(", ")))
    }

    fn array(&mut self) -> Option<String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some("[]".into());
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        Some(format!("[{}]", items.join(", ")))
    }

    fn hex4(&mut self) -> Option<u16> {
        let h = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        self.i += 4;
        u16::from_str_radix(h, 16).ok()
    }

    /// A string's content as UTF-16 code units (lone surrogates kept, as Python keeps them).
    fn string(&mut self) -> Option<Vec<u16>> {
        self.i += 1;
        let mut units = Vec::new();
        loop {
            let b = self.peek()?;
            match b {
                b'"' => {
                    self.i += 1;
                    return Some(units);
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek()?;
                    self.i += 1;
                    let unit = match e {
                        b'"' => b'"' as u16,
                        b'\\' => b'\\' as u16,
                        b'/' => b'/' as u16,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n' as u16,
                        b'r' => b'\r' as u16,
                        b't' => b'\t' as u16,
                        b'u' => self.hex4()?,
                        _ => return None,
                    };
                    units.push(unit);
                }
                _ => {
                    // One UTF-8 encoded character.
                    let len = match b {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    let ch = std::str::from_utf8(self.s.get(self.i..self.i + len)?).ok()?;
                    self.i += len;
                    units.extend(ch.encode_utf16());
                }
            }
        }
    }

    fn number(&mut self) -> Option<String> {
        let start = self.i;
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
            )
        {
            self.i += 1;
        }
        let tok = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if tok.is_empty() {
            return None;
        }
        if !tok.contains(['.', 'e', 'E']) {
            // Python ints are exact; `-0` is `0`.
            let neg = tok.starts_with('-');
            let digits = tok.trim_start_matches('-').trim_start_matches('0');
            return Some(match (digits.is_empty(), neg) {
                (true, _) => "0".to_string(),
                (false, true) => format!("-{digits}"),
                (false, false) => digits.to_string(),
            });
        }
        let f: f64 = tok.parse().ok()?;
        Some(python_float_repr(f))
    }
}

/// Python's `json.dumps` string escaping with `ensure_ascii=True`.
fn escape(units: &[u16]) -> String {
    let mut out = String::with_capacity(units.len() + 2);
    out.push('"');
    for &u in units {
        match u {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(u as u8 as char),
            _ => out.push_str(&format!("\\u{u:04x}")),
        }
    }
    out.push('"');
    out
}

/// Python's `repr(float)`: shortest round-trip digits; scientific notation when the decimal
/// exponent is below -4 or at least 16.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde±x".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let body = if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                format!("{}{}.0", digits, "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            let _ = n;
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        };
        format!("{sign}{body}")
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_vector() {
        assert_eq!(
            python_json(r#"{"event":"BackupStarted","n":1}"#).unwrap(),
            r#"{"event": "BackupStarted", "n": 1}"#
        );
        assert_eq!(
            checksum(r#"{"event":"BackupStarted","n":1}"#).unwrap(),
            "MD5:77304575523d9e78bafb864b74c01f2f"
        );
        assert_eq!(checksum("null"), None);
    }

    #[test]
    fn python_formatting() {
        let cases = [
            (
                r#"{ "b" : [1,2 , {"c":null}], "a":true }"#,
                r#"{"b": [1, 2, {"c": null}], "a": true}"#,
            ),
            (r#""caf\u00e9 ü 😀""#, r#""caf\u00e9 \u00fc \ud83d\ude00""#),
            (r#""a\/b\"\\\n\u0001""#, r#""a/b\"\\\n\u0001""#),
            (r#"{"k":1,"k":2,"j":3}"#, r#"{"k": 2, "j": 3}"#),
            ("[]", "[]"),
            ("{}", "{}"),
            ("-0", "0"),
            ("12345678901234567890123", "12345678901234567890123"),
            ("1.0", "1.0"),
            ("1e2", "100.0"),
            ("0.1", "0.1"),
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000.0"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("-1.5E-7", "-1.5e-07"),
            ("123456789012345678.0", "1.2345678901234568e+17"),
            ("2.5e-3", "0.0025"),
            ("1e400", "Infinity"),
        ];
        for (input, want) in cases {
            assert_eq!(python_json(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(python_json("{"), None);
        assert_eq!(python_json("[1,]"), None);
    }
}
