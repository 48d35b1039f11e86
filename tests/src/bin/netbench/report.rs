//! Samples, rows and the table netbench prints: the same columns as `bench` (id, figure,
//! value, unit, target, result, note), then the facts of the run and a summary of the targets.

use std::fmt::Write as _;
use std::time::Duration;

/// Durations of one measurement, sorted.
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Sorts the durations; there must be at least one.
    pub fn new(mut durations: Vec<Duration>) -> Samples {
        assert!(!durations.is_empty(), "no samples");
        durations.sort();
        Samples(durations)
    }

    /// The nearest-rank percentile `p` (0-100).
    pub fn pct(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.pct(50.0)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.pct(99.0)
    }

    /// The largest.
    pub fn max(&self) -> Duration {
        self.0[self.0.len() - 1]
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One line of the table. A row with a target passes when its value is below it.
pub struct Row {
    id: &'static str,
    what: String,
    value: f64,
    unit: &'static str,
    below: Option<f64>,
    note: String,
}

impl Row {
    /// The value must stay below `limit`.
    pub fn below(&mut self, limit: f64) -> &mut Row {
        self.below = Some(limit);
        self
    }

    /// A remark printed after the verdict.
    pub fn note(&mut self, note: impl Into<String>) -> &mut Row {
        self.note = note.into();
        self
    }

    fn passes(&self) -> Option<bool> {
        self.below.map(|limit| self.value < limit)
    }
}

/// Sections of rows, and facts about the run.
#[derive(Default)]
pub struct Report {
    sections: Vec<(&'static str, Vec<Row>)>,
    facts: Vec<(&'static str, String)>,
}

impl Report {
    /// Starts a section; the rows that follow belong to it.
    pub fn section(&mut self, name: &'static str) {
        self.sections.push((name, Vec::new()));
    }

    /// Adds a row to the current section.
    pub fn row(
        &mut self,
        id: &'static str,
        what: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> &mut Row {
        let rows = &mut self.sections.last_mut().expect("a section first").1;
        rows.push(Row {
            id,
            what: what.into(),
            value,
            unit,
            below: None,
            note: String::new(),
        });
        rows.last_mut().expect("just pushed")
    }

    /// Adds a fact about the run.
    pub fn fact(&mut self, name: &'static str, value: impl Into<String>) {
        self.facts.push((name, value.into()));
    }

    fn rows(&self) -> impl Iterator<Item = &Row> {
        self.sections.iter().flat_map(|(_, rows)| rows)
    }

    /// The table, the facts and the verdicts.
    pub fn table(&self) -> String {
        let what = self.rows().map(|r| r.what.len()).max().unwrap_or(6);
        let id = self.rows().map(|r| r.id.len()).max().unwrap_or(2);
        let mut out = String::new();
        for (name, rows) in &self.sections {
            let _ = writeln!(out, "\n== {name}");
            let _ = writeln!(
                out,
                "{:id$}  {:what$}  {:>12} {:8}  {:>18}  {:6}  note",
                "id", "figure", "value", "unit", "target", "result"
            );
            for r in rows {
                let target = r
                    .below
                    .map(|limit| format!("< {} {}", number(limit), r.unit))
                    .unwrap_or_else(|| "-".into());
                let verdict = match r.passes() {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "-",
                };
                let _ = writeln!(
                    out,
                    "{:id$}  {:what$}  {:>12} {:8}  {:>18}  {:6}  {}",
                    r.id,
                    r.what,
                    number(r.value),
                    r.unit,
                    target,
                    verdict,
                    r.note
                );
            }
        }
        let _ = writeln!(out, "\n== run");
        for (name, value) in &self.facts {
            let _ = writeln!(out, "{name}: {value}");
        }
        let targeted: Vec<&Row> = self.rows().filter(|r| r.below.is_some()).collect();
        let failed: Vec<&&Row> = targeted
            .iter()
            .filter(|r| r.passes() == Some(false))
            .collect();
        let _ = writeln!(
            out,
            "\ntargets: {} of {} pass",
            targeted.len() - failed.len(),
            targeted.len()
        );
        for r in failed {
            let _ = writeln!(
                out,
                "FAILED: {} ({}) = {} {}, target < {} {}",
                r.id,
                r.what,
                number(r.value),
                r.unit,
                number(r.below.unwrap_or_default()),
                r.unit
            );
        }
        out
    }
}

/// A number with about four significant digits and thousands separators.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let decimals = match v.abs() {
        a if a >= 1000.0 => 0,
        a if a >= 100.0 => 1,
        a if a >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{:.*}", decimals, v.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w.to_string(), Some(f.to_string())),
        None => (text.clone(), None),
    };
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if v < 0.0 { "-" } else { "" };
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}
