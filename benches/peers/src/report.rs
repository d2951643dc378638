//! Tables: the figures of every repetition, their medians, ratios to the fastest peer, printed
//! as Markdown and written as JSON.

use serde::Serialize;

use crate::measure::median;
use crate::systems::{Role, Subject};

/// What a column's figures are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    /// Nanoseconds, printed as ns, µs, ms or s.
    Nanos,
    /// Bytes, printed as B or KiB.
    Bytes,
}

/// One column of figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Column {
    /// Its header.
    pub(crate) header: &'static str,
    /// Its unit.
    pub(crate) unit: Unit,
    /// Whether a "× fastest peer" column follows it.
    pub(crate) ratio: bool,
}

impl Column {
    /// A column followed by its ratio to the fastest peer.
    pub(crate) fn with_ratio(header: &'static str, unit: Unit) -> Self {
        Self {
            header,
            unit,
            ratio: true,
        }
    }

    /// A column without a ratio.
    pub(crate) fn plain(header: &'static str, unit: Unit) -> Self {
        Self {
            header,
            unit,
            ratio: false,
        }
    }
}

/// One system's row: its figures in each repetition (one value per column), and what is
/// computed from them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// The system (and variant) the row is about.
    pub(crate) system: String,
    /// The subject's key, if the row is a subject's.
    pub(crate) key: Option<&'static str>,
    /// Peer, Overseer or baseline.
    pub(crate) role: Role,
    /// Rows are compared with the fastest peer of the same group (e.g. the same fault).
    pub(crate) group: String,
    /// Each repetition's figures, one per column.
    pub(crate) repetitions: Vec<Vec<f64>>,
    /// The median over repetitions of each column (filled by [`Table::finish`]).
    pub(crate) medians: Vec<f64>,
    /// The median divided by the fastest peer's, for columns with a ratio (filled by
    /// [`Table::finish`]).
    pub(crate) ratios: Vec<Option<f64>>,
    /// What the row measures when it differs from the others.
    pub(crate) note: String,
    /// Why a repetition failed, if one did.
    pub(crate) failure: Option<String>,
}

impl Row {
    /// An empty row for `subject`.
    pub(crate) fn for_subject(subject: Subject, group: &str, note: &str) -> Self {
        Self::named(
            subject.name(),
            Some(subject.key()),
            subject.role(),
            group,
            note,
        )
    }

    /// An empty row with a name of its own.
    pub(crate) fn named(
        system: &str,
        key: Option<&'static str>,
        role: Role,
        group: &str,
        note: &str,
    ) -> Self {
        Self {
            system: system.to_string(),
            key,
            role,
            group: group.to_string(),
            repetitions: Vec::new(),
            medians: Vec::new(),
            ratios: Vec::new(),
            note: note.to_string(),
            failure: None,
        }
    }

    /// The lowest and highest figure of `column` over the repetitions.
    fn spread(&self, column: usize) -> (f64, f64) {
        self.repetitions
            .iter()
            .map(|rep| rep[column])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
                (low.min(value), high.max(value))
            })
    }

    /// The name printed in the first column.
    fn label(&self) -> String {
        if self.group.is_empty() {
            self.system.clone()
        } else {
            format!("{}, {}", self.system, self.group)
        }
    }
}

/// One scenario's table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Table {
    /// The scenario's key (what a filter matches).
    pub(crate) scenario: &'static str,
    /// Its title.
    pub(crate) title: String,
    /// What it measures, in a sentence or two.
    pub(crate) what: String,
    /// The figure columns.
    pub(crate) columns: Vec<Column>,
    /// The rows, in the order they ran.
    pub(crate) rows: Vec<Row>,
    /// Remarks printed under the table.
    pub(crate) notes: Vec<String>,
}

impl Table {
    /// Computes medians and ratios.
    pub(crate) fn finish(mut self) -> Self {
        for row in &mut self.rows {
            row.medians = (0..self.columns.len())
                .map(|column| {
                    let values: Vec<f64> = row.repetitions.iter().map(|rep| rep[column]).collect();
                    median(&values)
                })
                .collect();
        }
        let fastest_peer = |group: &str, column: usize| {
            self.rows
                .iter()
                .filter(|row| row.role == Role::Peer && row.group == group)
                .map(|row| row.medians[column])
                .filter(|value| value.is_finite())
                .min_by(f64::total_cmp)
        };
        let ratios: Vec<Vec<Option<f64>>> = self
            .rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .enumerate()
                    .map(|(column, spec)| {
                        let reference = fastest_peer(&row.group, column)?;
                        let value = row.medians[column];
                        (spec.ratio && value.is_finite() && reference > 0.0)
                            .then(|| value / reference)
                    })
                    .collect()
            })
            .collect();
        for (row, ratios) in self.rows.iter_mut().zip(ratios) {
            row.ratios = ratios;
        }
        self
    }

    /// The table as Markdown: a heading, what it measures, the table (the first column's median
    /// followed by the lowest and highest repetition), the notes.
    pub(crate) fn markdown(&self) -> String {
        let mut out = format!("### {}\n\n{}\n\n", self.title, self.what);
        let mut header = vec!["system".to_string()];
        for (index, column) in self.columns.iter().enumerate() {
            header.push(if index == 0 {
                format!("{} (range)", column.header)
            } else {
                column.header.to_string()
            });
            if column.ratio {
                header.push("× fastest peer".to_string());
            }
        }
        header.push("note".to_string());
        out += &format!("| {} |\n", header.join(" | "));
        out += &format!("|{}\n", "---|".repeat(header.len()));
        for row in &self.rows {
            let mut cells = vec![match row.role {
                Role::Overseer => format!("**{}**", row.label()),
                _ => row.label(),
            }];
            for (index, column) in self.columns.iter().enumerate() {
                let value = row.medians.get(index).copied().unwrap_or(f64::NAN);
                let mut cell = format_value(value, column.unit);
                if index == 0 && row.repetitions.len() > 1 {
                    let (low, high) = row.spread(index);
                    cell += &format!(
                        " ({}–{})",
                        format_value(low, column.unit),
                        format_value(high, column.unit)
                    );
                }
                cells.push(cell);
                if column.ratio {
                    cells.push(match row.ratios.get(index).copied().flatten() {
                        Some(ratio) => format!("{ratio:.2}"),
                        None => "—".to_string(),
                    });
                }
            }
            let mut note = row.note.clone();
            if let Some(failure) = &row.failure {
                if !note.is_empty() {
                    note += "; ";
                }
                note += &format!("FAILED: {failure}");
            }
            cells.push(note);
            out += &format!("| {} |\n", cells.join(" | "));
        }
        for note in &self.notes {
            out += &format!("\n{note}\n");
        }
        out
    }
}

/// A figure for a table: durations as ns, µs, ms or s with three significant digits, bytes as
/// B or KiB; "—" when missing.
pub(crate) fn format_value(value: f64, unit: Unit) -> String {
    if !value.is_finite() {
        return "—".to_string();
    }
    match unit {
        Unit::Nanos => {
            let (scaled, suffix) = if value < 1e3 {
                (value, "ns")
            } else if value < 1e6 {
                (value / 1e3, "µs")
            } else if value < 1e9 {
                (value / 1e6, "ms")
            } else {
                (value / 1e9, "s")
            };
            format!("{} {suffix}", three_digits(scaled))
        }
        Unit::Bytes => {
            if value < 10_240.0 {
                format!("{value:.0} B")
            } else {
                format!("{} KiB", three_digits(value / 1024.0))
            }
        }
    }
}

/// A count with thousands separators: `100000` as `100,000`.
pub(crate) fn count(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn three_digits(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_printed_with_three_digits() {
        assert_eq!(format_value(42.0, Unit::Nanos), "42.0 ns");
        assert_eq!(format_value(2_597.0, Unit::Nanos), "2.60 µs");
        assert_eq!(format_value(130_470_000.0, Unit::Nanos), "130 ms");
        assert_eq!(format_value(1_536.0, Unit::Bytes), "1536 B");
        assert_eq!(format_value(f64::NAN, Unit::Bytes), "—");
        assert_eq!(count(100_000u32), "100,000");
        assert_eq!(count(999u32), "999");
        assert_eq!(count(1_000_000u64), "1,000,000");
    }

    #[test]
    fn ratios_are_to_the_fastest_peer_of_the_same_group() {
        let mut fast = Row::named("a", None, Role::Peer, "panic", "");
        fast.repetitions = vec![vec![10.0], vec![12.0], vec![11.0]];
        let mut slow = Row::named("b", None, Role::Peer, "panic", "");
        slow.repetitions = vec![vec![22.0]];
        let mut ours = Row::named("o", None, Role::Overseer, "panic", "");
        ours.repetitions = vec![vec![33.0]];
        let mut other_group = Row::named("c", None, Role::Peer, "error", "");
        other_group.repetitions = vec![vec![100.0]];
        let table = Table {
            scenario: "t",
            title: "t".into(),
            what: String::new(),
            columns: vec![Column::with_ratio("median", Unit::Nanos)],
            rows: vec![fast, slow, ours, other_group],
            notes: Vec::new(),
        }
        .finish();
        let ratios: Vec<_> = table.rows.iter().map(|row| row.ratios[0]).collect();
        assert_eq!(ratios, vec![Some(1.0), Some(2.0), Some(3.0), Some(1.0)]);
    }
}
