//! Documentation that must not drift from the code: the configuration reference is generated
//! from the option registry, the example configuration loads in strict mode, and the operations
//! guide lists every metric.
//!
//! After adding or changing an option, regenerate the reference with
//! `cargo run --bin zaqar-server -- --print-config-reference > docs/configuration.md`
//! (or run this test with `ZAQAR_UPDATE_DOCS=1`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn server(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zaqar-server"))
        .args(args)
        .env("ZAQAR_LOG", "off")
        .output()
        .expect("run zaqar-server")
}

#[test]
fn configuration_reference_is_generated_from_the_registry() {
    let out = server(&["--print-config-reference"]);
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    assert_eq!(generated, zaqar_server::config::reference_document());
    let path = repo("docs/configuration.md");
    if std::env::var("ZAQAR_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "docs/configuration.md is out of date with the option registry; regenerate it with\n  \
         cargo run --bin zaqar-server -- --print-config-reference > docs/configuration.md"
    );
    for spec in zaqar_server::config::OPTIONS {
        assert!(
            current.contains(&format!("| `{}` |", spec.name)),
            "{}",
            spec.name
        );
    }
}

#[test]
fn example_configuration_loads_in_strict_mode() {
    let example = repo("contrib/zaqar.conf.example");
    let out = server(&[
        "--config-file",
        example.to_str().unwrap(),
        "--strict-config",
        "--check-config",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The same through the library, with the values the example promises.
    let mut raw = zaqar_server::config::RawConfig::default();
    raw.load_file(&example).unwrap();
    let (config, warnings) = zaqar_server::config::Config::from_raw(&raw, true).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.admin.port, 9100);
    assert_eq!(config.log_format, zaqar_server::config::LogFormat::Json);
    assert_eq!(config.auth_strategy, "keystone");

    // And --check-config refuses what strict mode refuses.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "[transport]\nno_such_option = 1\n").unwrap();
    let out = server(&[
        "--config-file",
        bad.to_str().unwrap(),
        "--strict-config",
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_option"));
}

#[test]
fn operations_guide_lists_every_metric() {
    let guide = std::fs::read_to_string(repo("docs/operations.md")).unwrap();
    let metrics = zaqar_core::metrics::get();
    let names = metrics.names();
    assert!(names.len() > 20, "{names:?}");
    // The list is the exposition's: every TYPE line names one of them.
    for line in metrics.encode().lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap();
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
    }
    for name in names {
        // Counters are documented with their `_total` suffix, histograms by their base name.
        assert!(
            guide.contains(&format!("`{name}`")),
            "docs/operations.md lacks `{name}`"
        );
    }
}

#[test]
fn systemd_unit_checks_the_configuration_and_is_hardened() {
    let unit = std::fs::read_to_string(repo("contrib/zaqar-server.service")).unwrap();
    for line in [
        "--strict-config --check-config",
        "DynamicUser=yes",
        "StateDirectory=zaqar",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.contains(line), "{line}");
    }
}
