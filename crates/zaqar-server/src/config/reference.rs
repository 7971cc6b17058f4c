//! The option reference generated from the registry: the `--help` table and
//! `docs/configuration.md`, so that the documentation cannot drift from the code.

use super::{env_section, OptKind, OPTIONS};

/// A Markdown table of every option: section, name, default, meaning. Printed by
/// `zaqar-server --help` and `--print-config-reference`, so the documentation cannot drift.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    let mut section = "";
    for spec in OPTIONS {
        if spec.section != section {
            section = spec.section;
            out.push_str(&format!(
                "\n[{section}]   (env: ZAQAR_{}__<OPTION>)\n",
                env_section(section)
            ));
        }
        let default = if spec.default.is_empty() {
            "\"\"".to_string()
        } else {
            spec.default.to_string()
        };
        out.push_str(&format!(
            "  {:<34} default {:<24} {}\n",
            spec.name, default, spec.help
        ));
    }
    out
}

/// `docs/configuration.md`: every option of the registry as Markdown tables, one per section.
/// Printed by `zaqar-server --print-config-reference`; `tests/docs.rs` checks that the file in
/// the repository equals it.
pub fn reference_document() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from the option registry (src/config/options.rs) by\n     \
         `cargo run --bin zaqar-server -- --print-config-reference > docs/configuration.md`.\n     \
         Do not edit by hand: tests/docs.rs fails when this file and the registry differ. -->\n\n\
         `zaqar-server` reads Zaqar's `zaqar.conf` INI layout. Precedence, last wins: defaults <\n\
         `--config-file` (in the order given) < `ZAQAR_<SECTION>__<OPTION>` environment variables\n\
         (section with `_` for `:` and `-`, e.g. `ZAQAR_DRIVERS_TRANSPORT_WSGI__PORT=9999`) <\n\
         command-line flags (`--bind`, `--port`, `--data-dir`, `--set SECTION.OPTION=VALUE`).\n\
         An invalid value stops start-up with a message naming the option and where the value came\n\
         from. An option that is not listed here is ignored with a warning, or refused with\n\
         `--strict-config`. Booleans accept oslo.config's spellings (`true`/`false`, `1`/`0`,\n\
         `yes`/`no`, `on`/`off`). Options marked *accepted* are recognised for compatibility with\n\
         Zaqar and have no effect. Values described as secret are never logged.\n",
    );
    let cell = |s: &str| s.replace('|', "\\|");
    let mut section = "";
    for spec in OPTIONS {
        if spec.section != section {
            section = spec.section;
            out.push_str(&format!(
                "\n## [{section}]\n\nEnvironment: `ZAQAR_{}__<OPTION>`\n\n\
                 | Option | Type | Default | Description |\n|---|---|---|---|\n",
                env_section(section)
            ));
        }
        let kind = match spec.kind {
            OptKind::Bool => "bool",
            OptKind::Int => "integer",
            OptKind::Str => "string",
            OptKind::List => "list",
            OptKind::Choice => "choice",
            OptKind::Accepted => "accepted",
        };
        let default = if spec.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", spec.default)
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {} | {} |\n",
            spec.name,
            cell(&default),
            cell(spec.help)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_lists_every_option() {
        let doc = reference_markdown();
        for s in OPTIONS {
            assert!(doc.contains(s.name), "{}", s.name);
        }
    }
}
