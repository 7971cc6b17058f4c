//! What a command prints: a list (rows under columns), one object (field/value pairs), or a raw
//! JSON document, rendered as a table or as JSON (`-f table|json`).

use std::io::Write;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// JSON: lists as arrays of objects (a count or the next page's marker is noted on
    /// standard error; `--all` fetches every page), single objects as objects (keys in
    /// snake_case).
    Json,
    /// Bare values, one row per line, fields separated by spaces (for shell scripts).
    Value,
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Nothing to print (the command's success is its exit status).
    Nothing,
    /// Rows under columns; `extra` is merged into the JSON rendering (e.g. a total count) and
    /// printed as `key: value` lines under the table.
    List {
        columns: Vec<&'static str>,
        rows: Vec<Vec<Value>>,
        extra: Vec<(&'static str, Value)>,
    },
    /// One object as field/value pairs.
    Show(Vec<(String, Value)>),
    /// A document printed as JSON whatever the format (home document, health report).
    Raw(Value),
}

impl Output {
    pub fn list(columns: Vec<&'static str>, rows: Vec<Vec<Value>>) -> Output {
        Output::List {
            columns,
            rows,
            extra: Vec::new(),
        }
    }

    pub fn show<K: Into<String>>(fields: impl IntoIterator<Item = (K, Value)>) -> Output {
        Output::Show(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

/// `Claim ID` → `claim_id`.
pub fn json_key(column: &str) -> String {
    column.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// A cell's text: strings as they are, `null` as empty, anything else as compact JSON.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(out: &mut String, columns: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let rule: String = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let line = |out: &mut String, cells: &[String]| {
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let c = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = w - c.chars().count();
            out.push(' ');
            out.push_str(c);
            out.push_str(&" ".repeat(pad + 1));
            out.push('|');
        }
        out.push('\n');
    };
    out.push_str(&rule);
    line(out, columns);
    out.push_str(&rule);
    for row in rows {
        line(out, row);
    }
    if !rows.is_empty() {
        out.push_str(&rule);
    }
}

/// Renders `output` in `format`.
pub fn render(output: &Output, format: Format) -> String {
    let mut out = String::new();
    match (output, format) {
        (Output::Nothing, _) => {}
        (Output::Raw(v), Format::Value) => {
            out.push_str(&cell(v));
            out.push('\n');
        }
        (Output::Raw(v), _) => {
            out.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
            out.push('\n');
        }
        (
            Output::List {
                columns,
                rows,
                extra,
            },
            Format::Table,
        ) => {
            let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            let rows: Vec<Vec<String>> =
                rows.iter().map(|r| r.iter().map(cell).collect()).collect();
            table(&mut out, &columns, &rows);
            for (k, v) in extra {
                out.push_str(&format!("{k}: {}\n", cell(v)));
            }
        }
        (Output::List { rows, .. }, Format::Value) => {
            for r in rows {
                let cells: Vec<String> = r.iter().map(cell).collect();
                out.push_str(&cells.join(" "));
                out.push('\n');
            }
        }
        (Output::List { columns, rows, .. }, Format::Json) => {
            let items: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let mut o = Map::new();
                    for (c, v) in columns.iter().zip(r) {
                        o.insert(json_key(c), v.clone());
                    }
                    Value::Object(o)
                })
                .collect();
            // Always an array, so `jq '.[]'` works whatever the options; `extra` is noted on
            // standard error by `print`.
            let doc = Value::Array(items);
            out.push_str(&serde_json::to_string_pretty(&doc).unwrap_or_default());
            out.push('\n');
        }
        (Output::Show(fields), Format::Table) => {
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|(k, v)| vec![k.clone(), cell(v)])
                .collect();
            table(&mut out, &["Field".into(), "Value".into()], &rows);
        }
        (Output::Show(fields), Format::Value) => {
            for (_, v) in fields {
                out.push_str(&cell(v));
                out.push('\n');
            }
        }
        (Output::Show(fields), Format::Json) => {
            let mut o = Map::new();
            for (k, v) in fields {
                o.insert(json_key(k), v.clone());
            }
            out.push_str(&serde_json::to_string_pretty(&Value::Object(o)).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}

/// Writes `text` to standard output. A reader that went away (`zaqar ... | head -1`) ends the
/// output quietly: `Err` only for other failures.
pub fn write_stdout(text: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints `output` to standard output; the notes of a list that has no place in its JSON or
/// value rendering (a count, the marker of the next page) go to standard error.
pub fn print(output: &Output, format: Format) -> std::io::Result<()> {
    if let (Output::List { extra, .. }, Format::Json | Format::Value) = (output, format) {
        for (k, v) in extra {
            eprintln!("zaqar: {}: {}", k.to_ascii_lowercase(), cell(v));
        }
    }
    write_stdout(render(output, format).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_json_uses_snake_case_keys() {
        let o = Output::list(
            vec!["Name", "Claim ID"],
            vec![
                vec![json!("a"), json!(null)],
                vec![json!("long-name"), json!(3)],
            ],
        );
        let t = render(&o, Format::Table);
        assert_eq!(
            t,
            "+-----------+----------+\n\
             | Name      | Claim ID |\n\
             +-----------+----------+\n\
             | a         |          |\n\
             | long-name | 3        |\n\
             +-----------+----------+\n"
        );
        let j: Value = serde_json::from_str(&render(&o, Format::Json)).unwrap();
        assert_eq!(
            j,
            json!([{"name": "a", "claim_id": null}, {"name": "long-name", "claim_id": 3}])
        );
        let s = Output::show([("Name", json!("q")), ("Metadata", json!({"a": 1}))]);
        let j: Value = serde_json::from_str(&render(&s, Format::Json)).unwrap();
        assert_eq!(j, json!({"name": "q", "metadata": {"a": 1}}));
        assert_eq!(render(&s, Format::Value), "q\n{\"a\":1}\n");
    }
}
