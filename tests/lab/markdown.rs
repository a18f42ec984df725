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

/// One number over the seeds, as the report summarizes it: the mean (summed in seed order),
/// the lowest and the highest (not a number if any seed's is not), and how many seeds.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

pub fn spread(values: impl IntoIterator<Item = f64>) -> Spread {
    let values: Vec<f64> = values.into_iter().collect();
    let n = values.len();
    let any_nan = values.iter().any(|v| v.is_nan());
    let (min, max) = if any_nan {
        (f64::NAN, f64::NAN)
    } else {
        (
            values.iter().cloned().fold(f64::INFINITY, f64::min),
            values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let mut sum = 0.0;
    for v in &values {
        sum += v;
    }
    Spread {
        mean: sum / n as f64,
        min,
        max,
        n,
    }
}

impl Spread {
    /// `96.75%`, over several seeds `96.75% (96.60–96.90)`.
    pub fn pct(&self) -> String {
        match self.n {
            1 => pct(self.mean),
            _ => format!(
                "{} ({:.2}–{:.2})",
                pct(self.mean),
                100.0 * self.min,
                100.0 * self.max
            ),
        }
    }

    /// `0.1234`, over several seeds `0.1234 (0.1200–0.1300)`; from 10,000 up `2.93e12`.
    pub fn fixed(&self, d: usize) -> String {
        let f = |v: f64| match v.abs() >= 1e4 {
            true => format!("{v:.2e}"),
            false => format!("{v:.d$}"),
        };
        match self.n {
            1 => f(self.mean),
            _ => format!("{} ({}–{})", f(self.mean), f(self.min), f(self.max)),
        }
    }

    /// A difference in points: `+1.23`, over several seeds `+1.23 (-0.50 to +2.00)`.
    pub fn points(&self) -> String {
        let p = |v: f64| format!("{:+.2}", 100.0 * v);
        match self.n {
            1 => p(self.mean),
            _ => format!("{} ({} to {})", p(self.mean), p(self.min), p(self.max)),
        }
    }
}

/// Where a network diverged over the seeds, as the report words it; `None` where it did not.
pub fn diverged(steps: &[Option<usize>]) -> Option<String> {
    let hit: Vec<usize> = steps.iter().flatten().copied().collect();
    let first = hit.iter().min()?;
    Some(match steps.len() {
        1 => format!("diverged at step {first}"),
        n => format!(
            "diverged in {} of {n} seeds, first at step {first}",
            hit.len()
        ),
    })
}

/// A test accuracy over the seeds with its divergences, as the report's tables print it.
pub fn score(accuracy: &Spread, steps: &[Option<usize>]) -> String {
    match diverged(steps) {
        Some(d) => format!("{}, {d}", accuracy.pct()),
        None => accuracy.pct(),
    }
}

/// A training loss over the seeds, or its divergences, as the report's tables print it.
pub fn loss(value: &Spread, steps: &[Option<usize>]) -> String {
    diverged(steps).unwrap_or_else(|| value.fixed(4))
}

/// How many seeds a claim held in, as the findings say it.
pub fn in_seeds(k: usize, n: usize) -> String {
    match (k, n) {
        (0, _) => "in no seed".into(),
        (1, 1) => "in this run".into(),
        (k, n) if k == n => format!("in all {n} seeds"),
        (k, n) => format!("in {k} of {n} seeds"),
    }
}

/// `mean ` before a number the findings average over several seeds.
pub fn mean_word(n: usize) -> &'static str {
    if n > 1 { "mean " } else { "" }
}
