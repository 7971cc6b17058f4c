//! `zaqar-server --check-config` as an operator meets it: malformed files are named by line,
//! every mistake is reported at once, unknown options get a suggestion, and what is refused
//! says "is not allowed".

use std::process::Command;

fn check(args: &[&str], file: Option<&str>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zaqar.conf");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zaqar-server"));
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config-file").arg(&path);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("ZAQAR_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(args)
        .arg("--check-config")
        .env("ZAQAR_LOG", "off")
        .output()
        .expect("run zaqar-server");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_malformed_file_is_an_error_naming_file_and_line() {
    let (code, text) = check(&[], Some("[DEFAULT]\nthis is not ini\n[drivers\n"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("zaqar.conf, line 2:"), "{text}");
    assert!(
        text.contains("line 3: the section header is not closed"),
        "{text}"
    );
    assert!(!text.contains("configuration is valid"), "{text}");
}

#[test]
fn every_invalid_value_is_reported_with_a_line_each() {
    let (code, text) = check(
        &[],
        Some("[drivers:transport:wsgi]\nport = eighty\nmax_connections = -1\n"),
    );
    assert_eq!(code, 2, "{text}");
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("zaqar-server: configuration error:"))
        .collect();
    assert_eq!(errors.len(), 2, "{text}");
}

#[test]
fn unknown_options_suggest_and_strict_mode_refuses() {
    let file = "[transport]\nmax_mesages_per_page = 5\n";
    let (code, text) = check(&[], Some(file));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("is ignored; did you mean max_messages_per_page?"),
        "{text}"
    );
    let (code, text) = check(&["--strict-config"], Some(file));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("is not allowed; did you mean max_messages_per_page?"),
        "{text}"
    );
    // An option set on the command line that does not exist is always an error.
    let (code, text) = check(&["--set", "nosuch.option=1"], None);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("[nosuch] option (from command line) is not allowed"),
        "{text}"
    );
}
