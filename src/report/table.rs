//! Tables for `plan`, `verify` and `status`, aligned on the text before any color.

use crate::engine::events::{PlanRow, StatusRow, StepState};
use crate::engine::summary::PlanSummary;

/// Colors a cell after it was padded: `(column, text, padded) -> shown`.
pub type Styler<'a> = &'a dyn Fn(usize, &str, String) -> String;

pub fn no_style(_: usize, _: &str, padded: String) -> String {
    padded
}

fn render(headers: &[&str], rows: &[Vec<String>], style: Styler<'_>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<(String, String)>| {
        let last = cells.len() - 1;
        let text: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, (raw, shown))| {
                let pad = if i == last {
                    0
                } else {
                    widths[i] - raw.chars().count()
                };
                format!("{shown}{}", " ".repeat(pad))
            })
            .collect();
        text.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(
        headers
            .iter()
            .map(|h| (h.to_string(), h.to_string()))
            .collect(),
    );
    for row in rows {
        out.push_str(&line(
            row.iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), style(i, c, c.clone())))
                .collect(),
        ));
    }
    out
}

/// The plan table and its summary line.
pub fn plan(rows: &[PlanRow], summary: &PlanSummary, style: Styler<'_>) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.step.clone(),
                r.kind.clone(),
                mode(r),
                r.state.to_string(),
                r.detail.clone(),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        "No step selected.\n".to_string()
    } else {
        render(&["STEP", "KIND", "MODE", "STATE", "DETAIL"], &cells, style)
    };
    out.push('\n');
    out.push_str(&summary.to_string());
    out.push('\n');
    out
}

/// The verify table and its drift line.
pub fn verify(rows: &[PlanRow], drift: usize, style: Styler<'_>) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let finding = r.probe.map_or_else(|| "-".to_string(), |f| f.to_string());
            vec![
                r.step.clone(),
                r.kind.clone(),
                mode(r),
                finding,
                r.detail.clone(),
            ]
        })
        .collect();
    let mut out = render(&["STEP", "KIND", "MODE", "PROBE", "DETAIL"], &cells, style);
    out.push('\n');
    out.push_str(&if drift == 0 {
        format!("No drift: {} steps probed.\n", rows.len())
    } else {
        format!(
            "Drift: {drift} of {} steps need work; run `bringup run` to converge.\n",
            rows.len()
        )
    });
    out
}

/// The status table.
pub fn status(checkpoint: &str, rows: &[StatusRow], style: Styler<'_>) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = if r.defined {
                r.state.to_string()
            } else {
                format!("{} (step removed)", r.state)
            };
            let when = match r.state {
                StepState::Interrupted => r.started,
                _ => r.finished,
            };
            vec![
                r.step.clone(),
                state,
                when.map_or_else(|| "-".into(), crate::engine::clock::rfc3339),
                r.attempts.to_string(),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = format!("Checkpoint {checkpoint}\n\n");
    out.push_str(&render(
        &["STEP", "STATE", "LAST", "ATTEMPTS", "ERROR"],
        &cells,
        style,
    ));
    out
}

fn mode(row: &PlanRow) -> String {
    match row.mode {
        crate::phase::model::Mode::Once => "once".into(),
        crate::phase::model::Mode::Ensure => "ensure".into(),
    }
}
