//! Rendering command results: text for people, JSON for machines, Markdown for deploy issues.
//! Results go to stdout; everything else (logs, progress, errors) goes to stderr.

use crate::engine::inspect::StatusLine;
use crate::engine::ledger::Run;
use crate::engine::runner::{Outcome, PlanReport};
use crate::kit::migration::{Plan, Shape};
use crate::registry::Registered;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Markdown,
}

/// One JSON document, ending with a newline like every other output.
fn json_doc(value: serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}

/// `sample-data`: what was loaded, and what each migration of the catalog would write on it now.
pub(crate) fn sample_data(
    target: &str,
    l: &crate::fixtures::Loaded,
    pending: &[(&Registered, crate::error::Result<u64>)],
    format: Format,
) -> String {
    if format == Format::Json {
        let pending: serde_json::Map<String, serde_json::Value> = pending
            .iter()
            .map(|(m, rows)| match rows {
                Ok(rows) => (m.name.to_string(), json!(rows)),
                Err(e) => (m.name.to_string(), json!({ "error": e.to_string() })),
            })
            .collect();
        return json_doc(json!({
            "target": target,
            "loaded": {
                "competencies": l.competencies,
                "capabilities": l.capabilities,
                "capability_competencies": l.links,
                "scenarios": l.scenarios,
                "roles": l.roles,
                "scenario_roles": l.scenario_roles,
                "competency_versions": l.preexisting_versions,
                "role_versions": l.preexisting_role_versions,
                "scenario_generations": l.generations,
                "scenario_capabilities": l.scenario_capabilities,
            },
            "pending": pending,
        }));
    }
    let n = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut out = format!(
        "loaded sample data into {target}\n  {} in {} ({}), {}, {}\n  already there: {}, {}\n  what each migration would write now:\n",
        n(l.competencies, "competency", "competencies"),
        n(l.capabilities, "capability", "capabilities"),
        n(l.links, "link", "links"),
        n(l.scenarios, "scenario", "scenarios"),
        n(l.roles, "role", "roles"),
        n(l.preexisting_versions, "competency version", "competency versions"),
        n(l.preexisting_role_versions, "role version", "role versions"),
    );
    for (m, rows) in pending {
        let rows = match rows {
            Ok(rows) => format!(
                "{} ({})",
                crate::engine::text::count(*rows, "row"),
                writes(m)
            ),
            Err(e) => format!("cannot plan here: {e}"),
        };
        out.push_str(&format!("    V{}__{}: {rows}\n", m.version, m.name));
    }
    out
}

/// What a migration writes, from its shape: the table it inserts into or updates.
pub(crate) fn writes(m: &Registered) -> String {
    match m.migration.shape() {
        Shape::Insert(undo) => format!("inserts into {}", undo.table()),
        Shape::Update => format!("updates {}", m.migration.key().table),
        Shape::Irreversible(_) => format!("changes {}, irreversibly", m.migration.key().table),
    }
}

pub(crate) fn status(target: &str, lines: &[StatusLine], format: Format) -> String {
    match format {
        Format::Json => json_doc(json!({ "target": target, "migrations": lines })),
        Format::Markdown => status_markdown(target, lines),
        Format::Text => status_text(target, lines),
    }
}

/// The `status` columns, one list for both renderers: Markdown header, text header, text alignment
/// (negative: right-aligned; the text widths follow the content).
const STATUS_COLUMNS: [(&str, &str, i8); 8] = [
    ("version", "VERSION", 1),
    ("name", "NAME", 1),
    ("state", "STATE", 1),
    ("rows applied", "APPLIED", -1),
    ("rows reverted", "REVERTED", -1),
    ("undo journal", "JOURNAL", -1),
    ("checksum", "CHECKSUM", 1),
    ("updated (UTC)", "UPDATED (UTC)", 1),
];

/// A status line's cells in [`STATUS_COLUMNS`] order; `changed` marks a changed checksum and `never`
/// stands for a missing update time (each format has its own).
fn status_cells(l: &StatusLine, changed: &str, never: &str) -> [String; 8] {
    [
        l.version.to_string(),
        l.name.clone(),
        l.state.clone(),
        l.rows_applied.to_string(),
        l.rows_reverted.to_string(),
        l.journal_rows.map_or_else(|| "-".into(), |n| n.to_string()),
        if l.checksum_ok { "ok" } else { changed }.to_string(),
        l.updated_at.as_deref().unwrap_or(never).to_string(),
    ]
}

/// The Markdown table, every column; with a file column once some migration comes from a
/// migrations directory, as the text table adds a `file:` line.
fn status_markdown(target: &str, lines: &[StatusLine]) -> String {
    let files = from_files(lines);
    let mut headers = STATUS_COLUMNS.map(|(md, _, _)| md).to_vec();
    if files {
        headers.push("file");
    }
    let mut out = format!(
        "**backfill status** on `{target}`\n\n{}|{}\n",
        markdown_row(&headers),
        "---|".repeat(headers.len())
    );
    for l in lines {
        let mut cells = status_cells(l, "**changed**", "").to_vec();
        if files {
            let file = l.origin.as_deref().unwrap_or_default();
            cells.push(format!("`{}`", file.replace('|', "\\|")));
        }
        out.push_str(&markdown_row(&cells));
    }
    out
}

/// Whether some migration comes from a migrations directory (a `.toml` file).
fn from_files(lines: &[StatusLine]) -> bool {
    lines
        .iter()
        .any(|l| l.origin.as_deref().is_some_and(|o| o.ends_with(".toml")))
}

/// Where the name sits in [`STATUS_COLUMNS`], and how narrow the text table may make it.
const NAME: usize = 1;
const MIN_NAME: usize = 10;

/// `cell` within `width` characters, its end replaced by `…` when it is longer.
fn cut(cell: &str, width: usize) -> String {
    if cell.chars().count() <= width {
        return cell.to_string();
    }
    let kept: String = cell.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn markdown_row(cells: &[impl AsRef<str>]) -> String {
    let cells: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// The text table, to fit 80 columns: each column as wide as its widest cell, two spaces apart;
/// the undo journal's column only when a journal holds rows, the reverted rows only when some were,
/// times to the minute, and names cut short with `…` when the table would still be wider (the
/// version is what commands take). JSON and Markdown keep every column, whole names and the seconds.
fn status_text(target: &str, lines: &[StatusLine]) -> String {
    let journal = lines.iter().any(|l| l.journal_rows.unwrap_or(0) > 0);
    // Each migration's file, once some come from a migrations directory (a line of its own: the
    // paths would not fit the 80 columns).
    let files = from_files(lines);
    let reverted = lines.iter().any(|l| l.rows_reverted > 0);
    let shown: Vec<usize> = (0..STATUS_COLUMNS.len())
        .filter(|&i| match STATUS_COLUMNS[i].1 {
            "JOURNAL" => journal,
            "REVERTED" => reverted,
            _ => true,
        })
        .collect();
    let headers = STATUS_COLUMNS.map(|(_, text, _)| text.to_string());
    let rows: Vec<[String; 8]> = lines
        .iter()
        .map(|l| {
            let mut cells = status_cells(l, "CHANGED", "-");
            // "YYYY-MM-DD HH:MM:SS" to the minute.
            if let Some(minute) = cells[7].get(..16) {
                cells[7] = minute.to_string();
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = (0..STATUS_COLUMNS.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total = shown.iter().map(|&i| widths[i] + 2).sum::<usize>() - 2;
    widths[NAME] -= total
        .saturating_sub(80)
        .min(widths[NAME].saturating_sub(MIN_NAME));
    let row = |cells: &[String; 8]| {
        let padded: Vec<String> = shown
            .iter()
            .map(|&i| {
                let w = widths[i];
                let cell = &cut(&cells[i], w);
                if STATUS_COLUMNS[i].2 < 0 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = format!("target: {target}\n{}", row(&headers));
    for (l, cells) in lines.iter().zip(&rows) {
        out.push_str(&row(cells));
        for line in l.live.iter().flat_map(live_lines) {
            out.push_str(&format!(
                "{}\n",
                cut(&format!("{:<w$}  {line}", "", w = widths[0]), 80)
            ));
        }
        if let Some(e) = &l.last_error {
            out.push_str(&format!("{:<w$}  last error: {e}\n", "", w = widths[0]));
        }
        if let (true, Some(file)) = (files, &l.origin) {
            out.push_str(&format!("{:<w$}  file: {file}\n", "", w = widths[0]));
        }
    }
    out
}

/// A run under way, under its status row: who runs it and how far it is, then what holds it and
/// what was asked of it.
fn live_lines(live: &crate::engine::ledger::Request) -> Vec<String> {
    use crate::engine::ledger::Requested;
    let l = &live.live;
    // The host last: a long one is cut, never the figures.
    let mut first = vec![match l.rows_total {
        Some(total) => format!("{}/{total} planned rows", l.rows),
        None => crate::engine::text::count(l.rows, "row"),
    }];
    first.extend(l.rows_per_second.map(|r| format!("{r} rows/s")));
    first.extend(
        l.permille
            .map(|p| format!("{:.1}% of keys", p as f64 / 10.0)),
    );
    first.extend(l.eta_seconds.map(|s| {
        format!(
            "ETA {}",
            crate::engine::progress::human(std::time::Duration::from_secs(s))
        )
    }));
    let mut second = Vec::new();
    if let (Some(done), Some(total)) = (l.chunks_done, l.chunks_total) {
        second.push(format!("chunks {done}/{total}"));
    }
    second.extend(l.workers.map(|n| crate::engine::text::count(n, "job")));
    second.push(format!("pid {} on {}", live.pid, live.host));
    let mut out = vec![first.join(" · "), second.join(" · ")];
    out.extend(
        l.throttle_reason
            .as_ref()
            .map(|r| format!("throttled: {r}")),
    );
    let by = live.requested_by.as_deref().unwrap_or("an operator");
    match (live.requested, l.state.as_str()) {
        (Some(Requested::Pause), "paused") => out.push(format!("paused by {by}")),
        (Some(asked), _) => out.push(format!("{} requested by {by}", asked.as_str())),
        (None, _) => {}
    }
    out
}

pub(crate) fn plans(reports: &[PlanReport], format: Format) -> String {
    if format == Format::Json {
        return json_doc(json!({ "plans": reports }));
    }
    if reports.is_empty() {
        return "nothing pending: no migration to plan\n".into();
    }
    let md = format == Format::Markdown;
    let mut out = String::new();
    for r in reports {
        out.push_str(&plan_head(r, md));
        out.push_str(&plan_groups(&r.plan, md));
        out.push('\n');
    }
    out
}

/// A plan's head line (what it writes, what it skips, the ledger state); in Markdown also its
/// heading and the groups' table header.
fn plan_head(r: &PlanReport, md: bool) -> String {
    let p = &r.plan;
    let skipped = match (p.skipped, p.skipped_because.as_str()) {
        (0, _) => String::new(),
        (n, "") => format!(", {n} skipped"),
        (n, why) => format!(", {n} skipped ({why})"),
    };
    let state = r
        .state
        .as_deref()
        .map(|s| format!(" [{s}; apply {} tops it up]", r.version))
        .unwrap_or_default();
    let head = format!(
        "V{}__{}: {} to write{skipped}{state}",
        r.version,
        r.name,
        crate::engine::text::count(p.total, "row")
    );
    if md {
        format!(
            "### plan V{}__{}\n\n{head}; checksum `{}`\n\n| {} | rows | samples |\n|---|---|---|\n",
            r.version,
            r.name,
            &r.checksum.get(..12).unwrap_or(&r.checksum),
            p.group_label
        )
    } else {
        format!("{head}\n")
    }
}

/// A plan's groups: a table row each (Markdown), a line each with samples, a packed grid without.
fn plan_groups(p: &Plan, md: bool) -> String {
    let mut out = String::new();
    // An ungrouped plan's one group is every row: its key (0) and the total said twice mislead.
    let ungrouped = p.group_by.is_empty();
    if !md && ungrouped {
        for g in p.groups.iter().filter(|g| !g.samples.is_empty()) {
            let samples: Vec<String> = g.samples.iter().map(sample).collect();
            out.push_str(&format!("  e.g. {}\n", samples.join("; ")));
        }
        return out;
    }
    if !md && p.groups.iter().all(|g| g.samples.is_empty()) {
        return packed_groups(&p.group_label, &p.groups);
    }
    for g in &p.groups {
        let samples: Vec<String> = g.samples.iter().map(sample).collect();
        if md {
            let key = if ungrouped {
                "all".to_string()
            } else {
                g.key.to_string()
            };
            out.push_str(&format!(
                "| {key} | {} | {} |\n",
                g.count,
                samples.join("; ").replace('|', "\\|")
            ));
        } else {
            let eg = if samples.is_empty() {
                String::new()
            } else {
                format!("   e.g. {}", samples.join("; "))
            };
            out.push_str(&format!(
                "  {} {:<8} {:>10}{eg}\n",
                p.group_label,
                g.key,
                crate::engine::text::count(g.count, "row"),
            ));
        }
    }
    out
}

/// Groups without samples as a grid within 80 columns, each group's key over its count:
/// ```text
///   scenario     4   7   9  12
///   rows         5   2  15   3
/// ```
fn packed_groups(label: &str, groups: &[crate::kit::migration::Group]) -> String {
    let head = label.len().max("rows".len());
    let cells: Vec<(String, String)> = groups
        .iter()
        .map(|g| (g.key.to_string(), g.count.to_string()))
        .collect();
    let mut out = String::new();
    let mut at = 0;
    while at < cells.len() {
        let (mut keys, mut counts) = (format!("  {label:<head$}"), format!("  {:<head$}", "rows"));
        while let Some((k, c)) = cells.get(at) {
            let w = k.len().max(c.len()) + 1;
            if keys.len() + w > 80 && at > 0 && keys.len() > head + 2 {
                break;
            }
            keys.push_str(&format!(" {k:>w$}", w = w - 1));
            counts.push_str(&format!(" {c:>w$}", w = w - 1));
            at += 1;
        }
        out.push_str(&format!("{keys}\n{counts}\n"));
    }
    out
}

/// One sample row as the migration described it: `#id`, then its other fields as `name=value`.
fn sample(s: &serde_json::Value) -> String {
    let Some(fields) = s.as_object() else {
        return s.to_string();
    };
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            "id" => format!("#{}", text(v)),
            _ => format!("{k}={}", text(v)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn outcomes(outcomes: &[Outcome], format: Format, nothing: &str) -> String {
    match format {
        Format::Json => json_doc(json!({ "results": outcomes })),
        _ if outcomes.is_empty() => format!("{nothing}\n"),
        _ => outcomes
            .iter()
            .map(|o| {
                let verb = &o.verb;
                let note = o
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                format!(
                    "V{}__{}: {} — {verb} {} in {}\n  {:.2}s, run {}{note}\n",
                    o.version,
                    o.name,
                    o.state,
                    crate::engine::text::count(o.rows, "row"),
                    crate::engine::text::count(o.batches, "batch"),
                    o.seconds,
                    o.run_id
                )
            })
            .collect(),
    }
}

pub(crate) fn verify(
    found: &crate::engine::inspect::Verification,
    checked: usize,
    format: Format,
) -> String {
    let (ledger, drift) = (&found.ledger, &found.drift);
    if format == Format::Json {
        return json_doc(json!({ "ok": ledger.is_empty(), "problems": ledger, "drift": drift }));
    }
    let mut text: String = if ledger.is_empty() {
        format!("ok: ledger consistent ({checked} migrations known)\n")
    } else {
        ledger.iter().map(|p| format!("{p}\n")).collect()
    };
    for d in drift {
        text.push_str(&format!("data drift: {d}\n"));
    }
    text
}

fn ts(t: Option<chrono::NaiveDateTime>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn duration(run: &Run) -> String {
    match (run.started_at, run.finished_at) {
        (Some(a), Some(b)) => format!("{:.1}s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => "-".into(),
    }
}

/// Planned counts per group from a plan summary, as "12 (3: 10, 7: 2)".
fn planned(summary: Option<&str>) -> String {
    let Some(plan) =
        summary.and_then(|s| serde_json::from_str::<crate::kit::migration::Plan>(s).ok())
    else {
        return "-".into();
    };
    let groups: Vec<String> = plan
        .groups
        .iter()
        .map(|g| format!("{}: {}", g.key, g.count))
        .collect();
    format!("{} ({})", plan.total, groups.join(", "))
}

/// The plan each run is compared with: its own, or for an apply without one (no `--expect-plan`) the
/// latest plan run before it of the same version and code.
fn plans_for(runs: &[Run]) -> Vec<Option<&str>> {
    let mut latest: std::collections::HashMap<(Option<i64>, Option<&str>), &str> =
        std::collections::HashMap::new();
    runs.iter()
        .map(|r| {
            let key = (r.version, r.checksum.as_deref());
            if let Some(own) = r.plan_summary.as_deref() {
                if r.action == crate::engine::ledger::Action::Plan {
                    latest.insert(key, own);
                }
                return Some(own);
            }
            (r.action == crate::engine::ledger::Action::Apply)
                .then(|| latest.get(&key).copied())
                .flatten()
        })
        .collect()
}

pub(crate) fn log(runs: &[Run], format: Format) -> String {
    match format {
        Format::Json => json_doc(json!({ "runs": runs })),
        Format::Markdown => {
            let mut out = String::from("| started (UTC) | action | version | state | rows | planned (per scenario) | duration | operator@host | tool | checksum | outcome |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
            for (r, plan) in runs.iter().zip(plans_for(runs)) {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {}@{} | {} | `{}` | {} |\n",
                    ts(r.started_at),
                    r.action,
                    r.version.map(|v| v.to_string()).unwrap_or_default(),
                    r.state,
                    r.row_count,
                    planned(plan),
                    duration(r),
                    r.operator,
                    r.host,
                    r.tool_version,
                    r.checksum
                        .as_deref()
                        .and_then(|c| c.get(..12))
                        .unwrap_or(""),
                    r.error
                        .as_deref()
                        .or(r.outcome.as_deref())
                        .unwrap_or("")
                        .replace('|', "\\|")
                ));
            }
            out
        }
        // One line per run that fits 80 columns, then its run id and outcome (or error) indented.
        Format::Text => runs
            .iter()
            .map(|r| {
                format!(
                    "{} {:<6} V{} {:<11} {:>10} {:>6}  {}@{}\n    run {}{}\n",
                    ts(r.started_at),
                    r.action.to_string(),
                    r.version.map(|v| v.to_string()).unwrap_or_default(),
                    r.state.to_string(),
                    if r.action == crate::engine::ledger::Action::Plan {
                        String::new()
                    } else {
                        crate::engine::text::count(r.row_count.max(0) as u64, "row")
                    },
                    duration(r),
                    r.operator,
                    r.host,
                    r.run_id,
                    r.error
                        .as_deref()
                        .or(r.outcome.as_deref())
                        .map(|o| format!(": {o}"))
                        .unwrap_or_default()
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_data_lists_each_migration_and_says_why_one_cannot_plan() {
        let all = crate::registry::all();
        let (first, second) = (&all[0], &all[1]);
        let refused = crate::error::Error::Usage("no such table: widgets".into());
        let pending = [(first, Ok(3)), (second, Err(refused))];
        let loaded = crate::fixtures::Loaded::default();
        let text = sample_data("db", &loaded, &pending, Format::Text);
        let want = format!(
            "V{}__{}: 3 rows ({})",
            first.version,
            first.name,
            writes(first)
        );
        assert!(text.contains(&want), "{text}");
        let want = format!(
            "V{}__{}: cannot plan here: no such table",
            second.version, second.name
        );
        assert!(text.contains(&want), "{text}");
        let doc: serde_json::Value =
            serde_json::from_str(&sample_data("db", &loaded, &pending, Format::Json)).unwrap();
        assert_eq!(doc["pending"][first.name], 3, "{doc}");
        assert!(doc["pending"][second.name]["error"].is_string(), "{doc}");
    }

    fn line(version: i64, name: &str, journal: Option<i64>) -> StatusLine {
        StatusLine {
            version,
            name: name.into(),
            state: "applied".into(),
            checksum_ok: true,
            rows_applied: 1234567,
            rows_reverted: 0,
            journal_rows: journal,
            updated_at: Some("2026-12-06 13:43:10".into()),
            last_error: None,
            origin: None,
            live: None,
        }
    }

    #[test]
    fn a_live_run_shows_its_runner_progress_and_request_within_80_columns() {
        use crate::engine::ledger::{Live, Request, Requested};
        let mut running = line(202611230001, "competency_versions", None);
        running.state = "paused".into();
        running.live = Some(Request {
            version: 202611230001,
            run_id: "r".into(),
            action: "apply".into(),
            requested: Some(Requested::Pause),
            tuning: Default::default(),
            requested_by: Some("alice".into()),
            live: Live {
                state: "paused".into(),
                rows: 1_234_567,
                rows_per_second: Some(3400),
                eta_seconds: Some(3700),
                permille: Some(456),
                workers: Some(4),
                chunks_done: Some(3),
                chunks_total: Some(8),
                ..Live::default()
            },
            host: "a-very-long-host-name.eu-west-1.compute.internal.example.com".into(),
            pid: 4242,
            running_seconds: 10,
            reported_seconds_ago: 1,
        });
        let text = status("sqlite://x.db", &[running], Format::Text);
        assert!(text.contains("paused by alice"), "{text}");
        assert!(
            text.contains("1234567 rows · 3400 rows/s · 45.6% of keys"),
            "{text}"
        );
        assert!(text.contains("chunks 3/8 · 4 jobs · pid 4242 on a-very-long"));
        for l in text.lines() {
            assert!(l.chars().count() <= 80, "wider than 80: {l}");
        }
    }

    #[test]
    fn a_long_name_is_cut_to_fit_80_columns_and_kept_whole_in_json() {
        let long = "fill_scenario_generation_scenario_ids_from_source_generations";
        let lines = [
            line(202611230001, "competency_versions", Some(12)),
            line(202612061343, long, Some(0)),
        ];
        let text = status("sqlite:///x.db", &lines, Format::Text);
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(widest <= 80, "{text}");
        assert!(
            text.contains("JOURNAL") && text.contains("fill_scen") && !text.contains(long),
            "{text}"
        );
        assert!(status("x", &lines, Format::Json).contains(long));
    }

    #[test]
    fn an_ungrouped_plan_shows_its_samples_not_a_group_zero() {
        let sample = serde_json::json!({"id": 7});
        let report = PlanReport {
            version: 202612061343,
            name: "fill_levels".into(),
            checksum: "ab".repeat(32),
            run_id: String::new(),
            state: None,
            plan: crate::kit::migration::Plan::ungrouped(28, 0, vec![sample]),
        };
        let text = plans(std::slice::from_ref(&report), Format::Text);
        assert!(
            text.starts_with("V202612061343__fill_levels: 28 rows to write\n"),
            "{text}"
        );
        assert!(text.contains("e.g.") && !text.contains("all 0"), "{text}");
        let md = plans(&[report], Format::Markdown);
        assert!(md.contains("| all | 28 |"), "{md}");
    }

    #[test]
    fn an_empty_journal_takes_no_column() {
        let lines = [line(202612061343, "ci_canary", Some(0))];
        let text = status("sqlite:///x.db", &lines, Format::Text);
        assert!(!text.contains("JOURNAL"), "{text}");
    }

    #[test]
    fn markdown_names_each_file_once_some_come_from_a_migrations_directory() {
        let mut compiled = line(202611230001, "competency_versions", None);
        compiled.origin = Some("data_migrations/V202611230001__competency_versions.rs".into());
        let mut file = line(202612070900, "fill_dates", None);
        file.origin = Some("db/data|migrations/V202612070900__fill_dates.toml".into());
        let md = status("x", &[compiled.clone(), file], Format::Markdown);
        assert!(md.contains("| file |"), "{md}");
        assert!(
            md.contains("| `data_migrations/V202611230001__competency_versions.rs` |"),
            "{md}"
        );
        assert!(
            md.contains("| `db/data\\|migrations/V202612070900__fill_dates.toml` |"),
            "{md}"
        );
        let header = md.lines().nth(2).unwrap_or_default();
        let rule = md.lines().nth(3).unwrap_or_default();
        assert_eq!(
            header.matches('|').count(),
            rule.matches('|').count(),
            "{md}"
        );
        let only_compiled = status("x", &[compiled], Format::Markdown);
        assert!(!only_compiled.contains("file"), "{only_compiled}");
    }
}
