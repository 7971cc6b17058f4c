//! Hostile-input tests on stable Rust: the checks of the cargo-fuzz targets (`fuzz/checks.rs`),
//! driven by a small in-repo generator instead of libFuzzer.
//!
//! For each target the run replays `fuzz/regressions/<target>/*` (inputs that once broke
//! something) and the seed corpus `fuzz/corpus/<target>/*`, then mutates the seeds and
//! generated JSON documents with a deterministic PRNG: bit flips, interesting bytes, tokens
//! from a dictionary (deep nesting, huge numbers, lone surrogates, invalid UTF-8, ...),
//! deletions, duplications, splices and truncations.
//!
//! Budget: `ZAQAR_FUZZ_SECONDS` seconds per target when set (what `scripts/fuzz.sh` uses),
//! else `ZAQAR_FUZZ_ITERATIONS` inputs (default 1,500, a few seconds in all under `cargo
//! test`). `ZAQAR_FUZZ_SEED` changes the PRNG seed (default fixed, so a plain `cargo test` is
//! reproducible). A failing input is written to `target/fuzz-failures/<target>-<hash>` and
//! printed; copy it into `fuzz/regressions/<target>/` with the fix.

#[path = "../../../../fuzz/checks.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// splitmix64: small, fast, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens that tend to find problems in JSON, query strings, INI files and dates.
const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\udfff\\ud800",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\x00",
    b"null",
    b"true",
    b"false",
    b"-0",
    b"0.0",
    b"1e999",
    b"-1e-999",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"123456789012345678901234567890",
    b"1.7976931348623157e308",
    b"NaN",
    b"Infinity",
    b"\"messages\"",
    b"\"body\"",
    b"\"ttl\"",
    b"\"delay\"",
    b"\"op\"",
    b"\"path\"",
    b"\"value\"",
    b"\"add\"",
    b"\"remove\"",
    b"\"replace\"",
    b"\"/_max_claim_count\"",
    b"\"/_dead_letter_queue\"",
    b"\"/~2\"",
    b"\"//\"",
    b"\"action\"",
    b"\"headers\"",
    b"\"Client-ID\"",
    b"\"X-Project-ID\"",
    b"\"queue_name\"",
    b"%",
    b"%zz",
    b"%ff",
    b"%00",
    b"&",
    b"=",
    b"+",
    b"limit=",
    b"limit=-1",
    b"limit=99999999999999999999",
    b"wait=",
    b"ids=,,,",
    b"\n",
    b"\r\n",
    b"[",
    b"[DEFAULT]",
    b"[drivers]",
    b"= ",
    b"port = 99999",
    b"port = -1",
    b"message_store = nope",
    b"\"quoted",
    b"'",
    b";",
    b"#",
    b"9999-12-31T23:59:59",
    b"0000-01-01T00:00:00",
    b"+262143-12-31T23:59:59Z",
    b"2030-02-30T25:61:61",
    b"T",
    b"Z",
    b"+99:99",
    b"\x80",
    b"\xc1",
    b"\xd9\xff",
    b"\xdb\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"\xc7\x05\x01",
];

const INTERESTING_BYTES: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'[', b'0', b'-', b'/', b'~', b'%', b'&',
    b'=', b',', b'\n', b' ',
];

/// A random JSON value, a few levels deep, with values from the dictionary's spirit.
fn gen_json(rng: &mut Rng, depth: usize, out: &mut Vec<u8>) {
    let leaf = depth == 0 || rng.chance(3);
    if leaf {
        let choice = rng.below(9);
        let text: String = match choice {
            0 => "null".into(),
            1 => "true".into(),
            2 => (rng.next() as i64 % 100_000).to_string(),
            3 => rng.next().to_string(),
            4 => format!("{}.{}e{}", rng.below(100), rng.below(100), rng.below(40)),
            5 => "\"\\ud83d\\ude00\"".into(),
            6 => format!("\"{}\"", "x".repeat(rng.below(40))),
            7 => {
                let token: &&[u8] = rng.pick(DICTIONARY);
                String::from_utf8_lossy(token).into_owned()
            }
            _ => format!("\"/{}\"", rng.below(10)),
        };
        out.extend_from_slice(text.as_bytes());
        return;
    }
    if rng.chance(2) {
        out.push(b'[');
        for i in 0..rng.below(4) {
            if i > 0 {
                out.push(b',');
            }
            gen_json(rng, depth - 1, out);
        }
        out.push(b']');
    } else {
        out.push(b'{');
        let keys = [
            "messages",
            "body",
            "ttl",
            "delay",
            "op",
            "path",
            "value",
            "action",
            "headers",
            "queue_name",
            "limit",
            "x",
        ];
        for i in 0..rng.below(4) {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("\"{}\":", rng.pick(&keys)).as_bytes());
            gen_json(rng, depth - 1, out);
        }
        out.push(b'}');
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = input.len();
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = *rng.pick(INTERESTING_BYTES);
            }
            2 | 3 => {
                let at = rng.below(len + 1);
                let token = rng.pick(DICTIONARY);
                input.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                input.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                let copy: Vec<u8> = input[at..at + n].to_vec();
                let to = rng.below(input.len() + 1);
                input.splice(to..to, copy);
            }
            6 if !seeds.is_empty() => {
                let other = rng.pick(seeds);
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - from);
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[from..from + n].iter().copied());
                }
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            8 => {
                // Deep nesting around or inside the input.
                let depth = 1 + rng.below(300);
                let (open, close) = if rng.chance(2) {
                    (b'[', b']')
                } else {
                    (b'{', b'}')
                };
                let at = rng.below(len + 1);
                let mut nest = vec![open; depth];
                if open == b'{' {
                    nest = b"{\"a\":".repeat(depth);
                }
                nest.extend(std::iter::repeat_n(
                    close,
                    if rng.chance(2) { depth } else { 0 },
                ));
                input.splice(at..at, nest);
            }
            9 => {
                let digits = 1 + rng.below(400);
                let at = rng.below(len + 1);
                let number: Vec<u8> = (0..digits).map(|_| b'0' + rng.below(10) as u8).collect();
                input.splice(at..at, number);
            }
            _ => {
                let at = rng.below(len + 1);
                let mut doc = Vec::new();
                gen_json(rng, 4, &mut doc);
                input.splice(at..at, doc);
            }
        }
    }
    input.truncate(64 * 1024);
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_dir_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok().map(|data| (e.path(), data)))
        .collect();
    files.sort();
    files
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `check` on `input`; on a panic, saves the input and fails with it.
fn run_one(target: &str, check: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_ok() {
        return;
    }
    let dir = repo().join("target").join("fuzz-failures");
    let path = dir.join(format!("{target}-{:016x}", fnv1a(input)));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, input);
    panic!(
        "fuzz target {target} failed on the input saved as {} ({} bytes): {:?}",
        path.display(),
        input.len(),
        String::from_utf8_lossy(&input[..input.len().min(400)])
    );
}

fn fuzz(target: &str, check: fn(&[u8])) {
    // Panics are expected to be caught and reported with their input; keep the default hook's
    // message for the first one only.
    let regressions = read_dir_files(&repo().join("fuzz/regressions").join(target));
    for (_, data) in &regressions {
        run_one(target, check, data);
    }
    let corpus = repo().join("fuzz/corpus").join(target);
    let mut seeds: Vec<Vec<u8>> = read_dir_files(&corpus)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert!(!seeds.is_empty(), "no seed inputs in {}", corpus.display());
    seeds.extend(regressions.into_iter().map(|(_, d)| d));
    for s in &seeds {
        run_one(target, check, s);
    }
    let seed = std::env::var("ZAQAR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5A_A4A2);
    let mut rng = Rng(seed ^ fnv1a(target.as_bytes()));
    let budget = std::env::var("ZAQAR_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    let iterations: u64 = std::env::var("ZAQAR_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500);
    let start = Instant::now();
    let mut done = 0u64;
    loop {
        match budget {
            Some(b) if start.elapsed() >= b => break,
            None if done >= iterations => break,
            _ => {}
        }
        let mut input = if seeds.is_empty() || rng.chance(8) {
            let mut doc = Vec::new();
            gen_json(&mut rng, 5, &mut doc);
            doc
        } else {
            rng.pick(&seeds).clone()
        };
        mutate(&mut rng, &mut input, &seeds);
        run_one(target, check, &input);
        done += 1;
    }
    eprintln!(
        "fuzz {target}: {done} generated inputs in {:.1} s, no failure",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_message_post() {
    fuzz("message_post", checks::message_post);
}

#[test]
fn fuzz_json_patch() {
    fuzz("json_patch", checks::json_patch);
}

#[test]
fn fuzz_query_string() {
    fuzz("query_string", checks::query_string);
}

#[test]
fn fuzz_signed_url() {
    fuzz("signed_url", checks::signed_url);
}

#[test]
fn fuzz_ws_frame() {
    fuzz("ws_frame", checks::ws_frame);
}

#[test]
fn fuzz_config_ini() {
    fuzz("config_ini", checks::config_ini);
}
