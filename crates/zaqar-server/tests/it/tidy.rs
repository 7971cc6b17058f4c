//! Tidy checks over the whole workspace, run by `cargo test`: the crate graph is the one
//! ARCHITECTURE.md states, every source file says what it is for (`//!`), files and functions
//! stay small enough to read, every lint exception gives its reason, and the dependencies
//! keep to the licences, sources and single versions we accept (a `cargo metadata` check in
//! place of `cargo deny`, which would cost CI a build of its own).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use syn::spanned::Spanned;
use syn::visit::Visit;

/// Longest source file, in lines.
const MAX_FILE_LINES: usize = 800;
/// Longest function, in lines.
const MAX_FN_LINES: usize = 150;

/// The crates and the workspace crates each may depend on (normal and build dependencies).
/// Lower layers first; see ARCHITECTURE.md, "The crate graph".
const ALLOWED_EDGES: &[(&str, &[&str])] = &[
    ("zaqar-core", &[]),
    ("zaqar-storage", &["zaqar-core"]),
    ("zaqar-notify", &["zaqar-core"]),
    ("zaqar-api", &["zaqar-core"]),
    (
        "zaqar-server",
        &["zaqar-core", "zaqar-storage", "zaqar-notify", "zaqar-api"],
    ),
    ("zaqar-cli", &[]),
    ("zaqar-bench", &[]),
    (
        "zaqar-testkit",
        &[
            "zaqar-core",
            "zaqar-storage",
            "zaqar-notify",
            "zaqar-api",
            "zaqar-server",
        ],
    ),
];

/// Licences a dependency may carry (one alternative of its SPDX expression must consist of
/// these only).
const LICENCES: &[&str] = &[
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "MIT",
    "MIT-0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "Zlib",
    "0BSD",
    "BSL-1.0",
    "CC0-1.0",
    "Unlicense",
    "Unicode-3.0",
    "CDLA-Permissive-2.0",
];

/// Crates present in more than one version, and why we accept it (each is pulled by a
/// well-kept dependency that has not moved to the newer major version yet). A new duplicate
/// fails this test: align versions, or add it here with its reason.
const ACCEPTED_DUPLICATES: &[(&str, &str)] = &[
    (
        "base64",
        "lettre and hyper-util moved to 0.23; reqwest, sqlx and ours use 0.22",
    ),
    (
        "rand",
        "sqlx-postgres uses 0.8, redis and uuid 0.10, ours 0.9",
    ),
    ("rand_core", "follows rand"),
    ("rand_chacha", "follows rand"),
    ("getrandom", "follows rand (0.2, 0.3, 0.4)"),
    ("cpufeatures", "chacha20 of rand 0.10 uses 0.3"),
    (
        "hashbrown",
        "rust-ini's ordered-multimap pins 0.14; indexmap moved to 0.17",
    ),
    (
        "syn",
        "proc macros in transition from syn 2 to syn 3 (async-trait, clap_derive)",
    ),
    ("r-efi", "follows getrandom"),
    ("redox_syscall", "platform crate, not built on Linux"),
    (
        "embedded-io",
        "postcard's optional embedded support, not built",
    ),
    ("windows-sys", "platform crate, not built on Linux"),
    ("windows-targets", "platform crate, not built on Linux"),
    (
        "windows_aarch64_gnullvm",
        "platform crate, not built on Linux",
    ),
    ("windows_aarch64_msvc", "platform crate, not built on Linux"),
    ("windows_i686_gnu", "platform crate, not built on Linux"),
    ("windows_i686_msvc", "platform crate, not built on Linux"),
    ("windows_x86_64_gnu", "platform crate, not built on Linux"),
    (
        "windows_x86_64_gnullvm",
        "platform crate, not built on Linux",
    ),
    ("windows_x86_64_msvc", "platform crate, not built on Linux"),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn metadata(no_deps: bool) -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace()).args([
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--offline",
    ]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    let out = cmd.output().expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Every `.rs` file of the workspace's crates and of the fuzz targets.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() && name != "target" && name != "corpus" && name != "artifacts" {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = workspace();
    let mut out = Vec::new();
    walk(&root.join("crates"), &mut out);
    walk(&root.join("fuzz"), &mut out);
    out.sort();
    assert!(out.len() > 50, "found only {} source files", out.len());
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(workspace())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn crate_graph_is_the_documented_one() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED_EDGES.iter().copied().collect();
    let meta = metadata(true);
    let members: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut problems = Vec::new();
    for name in &members {
        if !allowed.contains_key(name.as_str()) {
            problems.push(format!(
                "{name} is not in the crate graph of ARCHITECTURE.md (and of ALLOWED_EDGES)"
            ));
        }
    }
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let ours = allowed.get(name).copied().unwrap_or(&[]);
        for d in p["dependencies"].as_array().unwrap() {
            let dep = d["name"].as_str().unwrap();
            if !members.contains(dep) {
                continue;
            }
            let dev = d["kind"].as_str() == Some("dev");
            let ok = if dev {
                // Tests may use the crates below them, and the test harness.
                dep == "zaqar-testkit" || ours.contains(&dep) || dep == name
            } else {
                ours.contains(&dep)
            };
            if !ok {
                problems.push(format!(
                    "{name} depends on {dep}{}: not an edge of the crate graph",
                    if dev { " (dev)" } else { "" }
                ));
            }
            if !dev && dep == "zaqar-testkit" {
                problems.push(format!("{name} depends on zaqar-testkit outside its tests"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_source_file_says_what_it_is_for() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| relative(&p))
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` first line:\n{}",
        missing.join("\n")
    );
}

#[test]
fn files_stay_under_the_size_limit() {
    let long: Vec<String> = sources()
        .into_iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(&p)
                .unwrap_or_default()
                .lines()
                .count();
            (n > MAX_FILE_LINES).then(|| format!("{} ({n} lines)", relative(&p)))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines (split them along their seams):\n{}",
        long.join("\n")
    );
}

/// Collects functions longer than [`MAX_FN_LINES`].
struct LongFunctions<'a> {
    file: &'a str,
    found: Vec<String>,
}

impl LongFunctions<'_> {
    fn check(&mut self, name: &syn::Ident, span: proc_macro2::Span) {
        let lines = span.end().line.saturating_sub(span.start().line) + 1;
        if lines > MAX_FN_LINES {
            self.found.push(format!(
                "{}:{} {name} ({lines} lines)",
                self.file,
                span.start().line
            ));
        }
    }
}

impl<'ast> Visit<'ast> for LongFunctions<'_> {
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.check(&f.sig.ident, f.span());
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        self.check(&f.sig.ident, f.span());
        syn::visit::visit_impl_item_fn(self, f);
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if f.default.is_some() {
            self.check(&f.sig.ident, f.span());
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

#[test]
fn functions_stay_under_the_size_limit() {
    let mut found = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let file = match syn::parse_file(&text) {
            Ok(f) => f,
            Err(e) => panic!("{} does not parse: {e}", relative(&p)),
        };
        let name = relative(&p);
        let mut v = LongFunctions {
            file: &name,
            found: Vec::new(),
        };
        v.visit_file(&file);
        found.extend(v.found);
    }
    assert!(
        found.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_lint_exception_gives_its_reason() {
    let mut bare = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with("#[allow(") || t.starts_with("#![allow(")) {
                continue;
            }
            let commented_above = i > 0 && lines[i - 1].trim_start().starts_with("//");
            if !(commented_above || t.contains("reason =") || t.contains("//")) {
                bare.push(format!("{}:{}: {}", relative(&p), i + 1, t));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "`allow` without a reason (a comment above it, or `reason = \"...\"`):\n{}",
        bare.join("\n")
    );
}

/// Whether an SPDX expression can be satisfied with [`LICENCES`]: one of its `OR`
/// alternatives (parentheses flattened, `/` read as `OR`) has only accepted terms.
fn licence_accepted(expr: &str) -> bool {
    let flat = expr.replace(['(', ')'], " ").replace('/', " OR ");
    flat.split(" OR ").any(|alt| {
        alt.split(" AND ")
            .map(str::trim)
            .all(|term| LICENCES.contains(&term))
    })
}

#[test]
fn dependencies_keep_to_licences_sources_and_single_versions() {
    let meta = metadata(false);
    let mut problems = Vec::new();
    let mut versions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap();
        let version = p["version"].as_str().unwrap();
        match p["source"].as_str() {
            None => {} // a workspace crate
            Some("registry+https://github.com/rust-lang/crates.io-index") => {}
            Some(other) => problems.push(format!("{name} {version} comes from {other}")),
        }
        if p["source"].is_string() {
            match p["license"].as_str() {
                Some(l) if licence_accepted(l) => {}
                Some(l) => problems.push(format!("{name} {version}: licence {l}")),
                None => problems.push(format!("{name} {version}: no licence expression")),
            }
        }
        versions.entry(name).or_default().insert(version);
    }
    let accepted: BTreeMap<&str, &str> = ACCEPTED_DUPLICATES.iter().copied().collect();
    for (name, vs) in &versions {
        if vs.len() > 1 && !accepted.contains_key(name) {
            problems.push(format!("{name} in several versions: {vs:?}"));
        }
    }
    for name in accepted.keys() {
        if versions.get(name).is_none_or(|vs| vs.len() < 2) {
            problems.push(format!(
                "{name} is no longer duplicated: remove it from ACCEPTED_DUPLICATES"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn licence_expressions() {
    assert!(licence_accepted("MIT OR Apache-2.0"));
    assert!(licence_accepted("(MIT OR Apache-2.0) AND Unicode-3.0"));
    assert!(licence_accepted("MIT/Apache-2.0"));
    assert!(licence_accepted("MIT OR Apache-2.0 OR LGPL-2.1-or-later"));
    assert!(!licence_accepted("GPL-3.0"));
    assert!(!licence_accepted("MIT AND GPL-2.0"));
}
