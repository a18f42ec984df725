//! Reading `lab.md` back: each experiment's section, its table and its findings; and the
//! formats its numbers are printed in, written again here so that a change to the report's
//! formatting is a change a test sees.

use std::collections::BTreeMap;

use serde_json::Value;

/// One experiment's section of `lab.md`.
#[derive(Debug)]
pub struct MdSection {
    /// The paragraph under the question.
    pub setup: String,
    /// The table's header row.
    pub header: String,
    /// The table's rows, as printed (the header and the separator left out).
    pub rows: Vec<String>,
    /// The paragraph after the table.
    pub findings: String,
}

/// `lab.md`'s sections by experiment name.
pub fn sections(md: &str) -> BTreeMap<String, MdSection> {
    md.split("\n## ")
        .skip(1)
        .map(|chunk| {
            let lines: Vec<&str> = chunk.lines().collect();
            let name = lines[0].to_string();
            let question = lines
                .iter()
                .position(|l| l.starts_with("**"))
                .unwrap_or_else(|| panic!("{name}: no question"));
            let setup = lines[question + 2].to_string();
            let first = lines.iter().position(|l| l.starts_with('|')).unwrap();
            let last = first
                + lines[first..]
                    .iter()
                    .take_while(|l| l.starts_with('|'))
                    .count();
            assert!(
                lines[first + 1].starts_with("|---|"),
                "{name}: no separator"
            );
            assert_eq!(lines[last], "", "{name}: a blank line after the table");
            let findings = lines[last + 1].to_string();
            assert!(
                lines[last + 3].starts_with('_') && lines[last + 3].ends_with(" s._"),
                "{name}: the time after the findings: {:?}",
                &lines[last..]
            );
            let section = MdSection {
                setup,
                header: lines[first].to_string(),
                rows: lines[first + 2..last]
                    .iter()
                    .map(|l| l.to_string())
                    .collect(),
                findings,
            };
            (name, section)
        })
        .collect()
}

/// A Markdown table row of `cells`.
pub fn row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// A number from `lab.json`, where `null` stands for a number that is not one (NaN).
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// A step from `lab.json`, `null` for none.
pub fn step(v: &Value) -> Option<usize> {
    v.as_u64().map(|s| s as usize)
}

/// An accuracy as the report prints it.
pub fn pct(accuracy: f64) -> String {
    format!("{:.2}%", 100.0 * accuracy)
}

/// A test accuracy with the step of divergence, as the report's tables print it.
pub fn score(accuracy: f64, diverged_at: Option<usize>) -> String {
    match diverged_at {
        Some(s) => format!("{} (diverged at step {s})", pct(accuracy)),
        None => pct(accuracy),
    }
}

/// A training loss, or the step of divergence, as the report's tables print it.
pub fn loss(value: f64, diverged_at: Option<usize>) -> String {
    match diverged_at {
        Some(s) => format!("diverged at step {s}"),
        None => format!("{value:.4}"),
    }
}
