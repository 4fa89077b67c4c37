//! The markdown tables: one dialect's report and the growth table across sizes.

use crate::dialect::Bench;
use crate::figures::{Figures, GrowthPoint, SweepPoint};
use crate::reference::default_batching;
use crate::stats::{busy, load_cell, mib, rate, ratio, secs, show_load, yes, LoadWatch, Samples};
use crate::timed::{Part, Profile};
use crate::update_shape::UpdateFigures;
use backfill::fixtures::Loaded;

impl Bench<'_> {
    pub(crate) fn report(
        &self,
        server: &str,
        loaded: &Loaded,
        load_secs: f64,
        f: &Figures,
        sweep: &[SweepPoint],
    ) -> String {
        let mut o = String::new();
        self.report_header(&mut o, server, loaded, load_secs, f);
        let Some((best_label, best)) = best_form(f) else {
            return o;
        };
        forms_table(&mut o, f, best_label, best);
        self.targets_table(&mut o, f, best);
        self.report_notes(&mut o, f, best_label, best);
        if !sweep.is_empty() {
            self.sweep_table(&mut o, f, sweep, best);
        }
        if let Some(u) = &f.update {
            self.update_table(&mut o, u);
        }
        for p in sweep {
            if let Some(profile) = &p.profile {
                profile_table(&mut o, &p.label, profile);
            }
        }
        o
    }

    /// The dialect's heading, the data loaded, the machine's load and the fixed batches.
    fn report_header(
        &self,
        o: &mut String,
        server: &str,
        loaded: &Loaded,
        load_secs: f64,
        f: &Figures,
    ) {
        let v = self.reg.version;
        let rows = f.apply_rows;
        o.push_str(&format!("## {} — {server}\n\n", self.kind.label()));
        o.push_str(&format!(
            "data: {} competencies, {} capabilities ({} without scenario), {} links, {} scenarios, {} existing versions; \
             V{v} writes {rows} rows; loaded in {}\n\n",
            loaded.competencies,
            loaded.capabilities,
            loaded.undiscovered_capabilities,
            loaded.links,
            loaded.scenarios,
            loaded.preexisting_versions,
            secs(load_secs)
        ));
        o.push_str(&format!(
            "load average (1 min, every {} s while measuring): {}\n\n",
            LoadWatch::EVERY.as_secs(),
            show_load(&f.load)
        ));
        self.fixed_batch_lines(o, f);
    }

    /// `--fixed-batch N`: the median batches and the pages they read.
    pub(crate) fn fixed_batch_lines(&self, o: &mut String, f: &Figures) {
        if let Some(n) = self.args.fixed_batch {
            o.push_str(&format!(
                "fixed batches (`--batch-size {n}`, 1 job): apply {} batches, median {} (min–max {}–{}); \
                 revert {} batches, median {}; load (1 min) {}\n\n",
                f.fixed_apply.len(),
                secs(f.fixed_apply.median()),
                secs(f.fixed_apply.min()),
                secs(f.fixed_apply.max()),
                f.fixed_revert.len(),
                secs(f.fixed_revert.median()),
                load_cell(&[&f.fixed_apply, &f.fixed_revert]),
            ));
            if let [apply, revert] = f.fixed_pages[..] {
                o.push_str(&format!(
                    "pages read per fixed batch (all / from outside the server's cache): apply {:.0} / {:.0}, \
                     revert {:.0} / {:.0}\n\n",
                    apply.0, apply.1, revert.0, revert.1
                ));
            }
        }
    }

    /// The figures against their targets: backfill against the reference SQL, batch times, memory.
    fn targets_table(&self, o: &mut String, f: &Figures, best: &Samples) {
        let v = self.reg.version;
        let jobs = self.args.jobs;
        o.push_str("| figure | backfill | reference | ratio | target | met | load (1 min) |\n");
        o.push_str("|---|---|---|---|---|---|---|\n");
        let mut row = |what: String, a: &Samples, b: &Samples, target: f64| {
            let (r, shown) = ratio_cell(a, b);
            o.push_str(&format!(
                "| {what} | {} | {} | {shown} | ≤ {target}× | {} | {} |\n",
                a.show(secs),
                b.show(secs),
                yes(r <= target),
                load_cell(&[a, b])
            ));
        };
        row(
            format!("`apply {v}` (1 job) / best single statement"),
            &f.apply,
            best,
            1.2,
        );
        row(
            format!("`apply {v} --jobs {jobs}` / best single statement"),
            &f.apply_jobs,
            best,
            0.8,
        );
        row(
            format!("`revert {v} --jobs {jobs}` / one DELETE by marker"),
            &f.revert_jobs,
            &f.delete,
            1.0,
        );
        row(
            format!("`revert {v}` (1 job) / one DELETE by marker"),
            &f.revert,
            &f.delete,
            1.5,
        );
        row(
            format!("`plan {v}` / one GROUP BY count"),
            &f.plan,
            &f.group_by,
            1.2,
        );
        old_way_row(o, f);
        limits_rows(o, f, jobs);
    }

    /// What the tables mean, how the `--jobs` workers shared the batches, and retried runs.
    fn report_notes(&self, o: &mut String, f: &Figures, best_label: &str, best: &Samples) {
        let rows = f.apply_rows;
        let jobs = self.args.jobs;
        o.push_str(&format!(
            "\nValues are median (min–max) over the runs; ratios are of the medians, with the range of the per-run ratios \
             (each run measures both sides). The best single statement is `{best_label}` ({}).\n",
            rate(rows as f64 / best.median())
        ));
        let mut per_worker = std::collections::BTreeMap::new();
        for e in &f.timeline_jobs {
            *per_worker.entry(e.worker).or_insert(0u64) += 1;
        }
        let counts: Vec<String> = per_worker.values().map(u64::to_string).collect();
        o.push_str(&format!(
            "`apply --jobs {jobs}` (first run): {} worker(s) wrote batches ({} batches each). Over every \
             `--jobs {jobs}` run: {} batches, {} attempts rolled back by a conflict between the workers and retried. \
             Batch times are each committed transaction's (BEGIN to COMMIT), from the processes' own debug log.\n",
            per_worker.len(),
            counts.join(", "),
            f.jobs_batches,
            f.jobs_retries
        ));
        for r in &f.retried {
            o.push_str(&format!(
                "\nretried from a clean state after an error (shared server): {r}\n"
            ));
        }
    }

    /// The UPDATE shape against one `UPDATE` (apply) and one restoring `UPDATE` (revert).
    pub(crate) fn update_table(&self, o: &mut String, u: &UpdateFigures) {
        let (v, jobs) = (crate::update_shape::VERSION, self.args.jobs);
        o.push_str(&format!(
            "\nUPDATE shape: `V{v}__version_effective_dates` (journaled) over {} version rows, one per competency, \
             against one `UPDATE … SET effective_from = date(created_at)` and one `UPDATE` back to NULL:\n\n\
             | figure | backfill | reference | ratio | target | met | load (1 min) |\n|---|---|---|---|---|---|---|\n",
            u.rows
        ));
        let rows = [
            (
                format!("`apply {v}` (1 job) / one UPDATE"),
                &u.apply,
                &u.update,
                2.0,
            ),
            (
                format!("`apply {v} --jobs {jobs}` / one UPDATE"),
                &u.apply_jobs,
                &u.update,
                1.3,
            ),
            (
                format!("`revert {v}` (1 job) / one restoring UPDATE"),
                &u.revert,
                &u.restore,
                2.0,
            ),
            (
                format!("`revert {v} --jobs {jobs}` / one restoring UPDATE"),
                &u.revert_jobs,
                &u.restore,
                2.0,
            ),
            (
                "the same as a declarative `.toml` (`--migrations-dir`): apply / compiled apply"
                    .into(),
                &u.declarative_apply,
                &u.apply,
                1.05,
            ),
            (
                "the declarative revert / compiled revert".into(),
                &u.declarative_revert,
                &u.revert,
                1.05,
            ),
        ];
        for (what, a, b, target) in rows {
            let (r, shown) = ratio_cell(a, b);
            o.push_str(&format!(
                "| {what} | {} | {} | {shown} | ≤ {target}× | {} | {} |\n",
                a.show(secs),
                b.show(secs),
                yes(r <= target),
                load_cell(&[a, b])
            ));
        }
    }

    /// The batch-size sweep, one row per batch size.
    fn sweep_table(&self, o: &mut String, f: &Figures, sweep: &[SweepPoint], best: &Samples) {
        o.push_str(&format!(
            "\nbatch-size sweep (in process, 1 job, {} run(s) each; walls include the ledger and lock work):\n\n",
            self.args.sweep_runs.max(1),
        ));
        o.push_str("| batch size | batches | apply wall | apply / best single statement | longest apply batch | revert wall | revert / DELETE | longest revert batch | load (1 min) |\n");
        o.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for p in sweep {
            o.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                p.label,
                p.batches,
                p.apply.show(secs),
                ratio(p.apply.median() / best.median()),
                secs(p.longest_apply.max()),
                p.revert.show(secs),
                ratio(p.revert.median() / f.delete.median()),
                secs(p.longest_revert.max()),
                load_cell(&[&p.apply, &p.revert]),
            ));
        }
    }
}

/// A ratio of medians, with the range of the per-run ratios when there are several runs.
fn ratio_cell(a: &Samples, b: &Samples) -> (f64, String) {
    let r = a.median() / b.median();
    let pairs = Samples::of(a.values.iter().zip(&b.values).map(|(x, y)| x / y).collect());
    let shown = if pairs.len() < 2 {
        ratio(r)
    } else {
        format!(
            "{} ({}–{})",
            ratio(r),
            ratio(pairs.min()),
            ratio(pairs.max())
        )
    };
    (r, shown)
}

/// `apply`'s rate against the old way's, when the old way ran.
fn old_way_row(o: &mut String, f: &Figures) {
    if f.old_way_rate.is_empty() {
        return;
    }
    let rows = f.apply_rows;
    let apply_rate = Samples::of(f.apply.values.iter().map(|w| rows as f64 / w).collect());
    let speedup = apply_rate.median() / f.old_way_rate.median();
    o.push_str(&format!(
        "| `apply` rows/s vs the old way (projected from a subset: {} rows from {} capabilities in {}, of which {} loading the capabilities, counted once) | {} | {} | {} faster | ≥ 30× | {} | {} |\n",
        f.old_way_rows,
        f.old_way_capabilities,
        secs(f.old_way_seconds),
        secs(f.old_way_load),
        apply_rate.show(rate),
        f.old_way_rate.show(rate),
        ratio(speedup),
        yes(speedup >= 30.0),
        load_cell(&[&f.apply, &f.old_way_rate])
    ));
}

/// The rows whose target is an absolute bound: the longest batch, peak memory, the no-op apply.
fn limits_rows(o: &mut String, f: &Figures, jobs: u64) {
    let batches = [
        &f.longest_apply,
        &f.longest_apply_jobs,
        &f.longest_revert,
        &f.longest_revert_jobs,
    ];
    let longest = batches.iter().map(|s| s.max()).fold(0.0, f64::max);
    o.push_str(&format!(
        "| longest batch transaction at the default batching ({}): apply / apply --jobs {jobs} / revert / revert --jobs {jobs} (apply: {} batches, median {}) | {} / {} / {} / {} | | | < 1 s | {} | {} |\n",
        default_batching(),
        f.batches,
        secs(f.median_batch.median()),
        secs(f.longest_apply.max()),
        secs(f.longest_apply_jobs.max()),
        secs(f.longest_revert.max()),
        secs(f.longest_revert_jobs.max()),
        yes(longest < 1.0),
        load_cell(&batches)
    ));
    if !f.stage.is_empty() {
        o.push_str(&format!(
            "| the run's stage (`kit::stage`: one pass, built once per apply before its first batch; part of each apply's time above), 1 job and --jobs {jobs} | {} | | | | | {} |\n",
            f.stage.show(secs),
            load_cell(&[&f.apply, &f.apply_jobs])
        ));
    }
    let rss = [
        &f.rss_apply,
        &f.rss_apply_jobs,
        &f.rss_revert,
        &f.rss_revert_jobs,
        &f.rss_plan,
        &f.rss_noop,
    ];
    let rss_max = rss
        .iter()
        .map(|s| s.max())
        .filter(|x| !x.is_nan())
        .fold(f64::NAN, f64::max);
    o.push_str(&format!(
        "| peak RSS of `backfill`: apply / apply --jobs {jobs} / revert / revert --jobs {jobs} / plan / no-op | {} | | | < 64 MiB | {} | {} |\n",
        rss.iter().map(|s| mib(s.max())).collect::<Vec<_>>().join(" / "),
        yes(rss_max < 64.0 * 1024.0),
        load_cell(&rss)
    ));
    o.push_str(&format!(
        "| no-op `apply` (connect + ledger check), {} runs | {} | | | < 100 ms | {} | {} |\n",
        f.noop.len(),
        f.noop.show(secs),
        yes(f.noop.median() < 0.1),
        load_cell(&[&f.noop])
    ));
}

/// Every single statement's time against the best one's, and the one `DELETE` by marker.
fn forms_table(o: &mut String, f: &Figures, best_label: &str, best: &Samples) {
    let rows = f.apply_rows;
    o.push_str(&format!(
        "Single statements (each one `INSERT … SELECT` of all {rows} rows in one transaction):\n\n"
    ));
    o.push_str(
        "| single statement | time | rows/s | / best | load (1 min) |\n|---|---|---|---|---|\n",
    );
    for (label, t) in &f.forms {
        let mark = if label == best_label {
            " **(best)**"
        } else {
            ""
        };
        o.push_str(&format!(
            "| {label}{mark} | {} | {} | {} | {} |\n",
            t.show(secs),
            rate(rows as f64 / t.median()),
            ratio(t.median() / best.median()),
            load_cell(&[t])
        ));
    }
    o.push_str(&format!(
        "| one `DELETE` by marker (the revert's reference) | {} | {} | | {} |\n\n",
        f.delete.show(secs),
        rate(rows as f64 / f.delete.median()),
        load_cell(&[&f.delete])
    ));
}

/// The fastest single statement (lowest median): the reference for `apply`.
pub(crate) fn best_form(f: &Figures) -> Option<(&str, &Samples)> {
    f.forms
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .min_by(|a, b| a.1.median().total_cmp(&b.1.median()))
        .map(|(label, s)| (label.as_str(), s))
}

/// How cost grows with size: rows/s of the best single statement, `apply` and `apply --jobs N`, the
/// longest batch and the peak RSS, per dialect and size.
pub(crate) fn growth_table(points: &[GrowthPoint], jobs: u64) -> String {
    let mut o = String::from("## How cost grows\n\n");
    o.push_str(&format!(
        "| dialect | competencies | rows written | best single statement | apply (1 job) | apply --jobs {jobs} | longest batch | peak RSS | median batch at a fixed size | load (1 min) |\n"
    ));
    o.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for p in points {
        let r = p.rows as f64;
        let fixed = p.fixed.map_or("–".into(), |(n, median)| {
            format!("{} ({n} keys)", secs(median))
        });
        let load = p.load.map_or("–".into(), |l| {
            let flag = if busy(l) { " **busy**" } else { "" };
            format!("{l:.1}{flag}")
        });
        o.push_str(&format!(
            "| {} | {} | {} | {} ({}) | {} ({}) | {} ({}) | {} | {} | {fixed} | {load} |\n",
            p.kind.label(),
            p.size,
            p.rows,
            rate(r / p.statement),
            secs(p.statement),
            rate(r / p.apply),
            secs(p.apply),
            rate(r / p.jobs),
            secs(p.jobs),
            secs(p.longest),
            mib(p.rss_kb)
        ));
    }
    o
}

/// `--profile`: where one in-process apply and revert spent their time, per part of the run.
fn profile_table(o: &mut String, label: &str, runs: &[(Profile, f64, u64); 2]) {
    o.push_str(&format!(
        "\nwhere the time goes (`--profile`, in process, batching {label}; round trips = statements sent):\n\n\
         | part | apply: round trips | apply: time | apply: share | revert: round trips | revert: time | revert: share |\n\
         |---|---|---|---|---|---|---|\n"
    ));
    let parts: std::collections::BTreeSet<Part> =
        runs.iter().flat_map(|(p, ..)| p.keys().copied()).collect();
    let cell = |(p, wall, _): &(Profile, f64, u64), part: Part| {
        let (d, n) = p.get(&part).copied().unwrap_or_default();
        let t = d.as_secs_f64();
        format!("{n} | {} | {:.0}%", secs(t), 100.0 * t / wall)
    };
    for part in parts {
        o.push_str(&format!(
            "| {} | {} | {} |\n",
            part.label(),
            cell(&runs[0], part),
            cell(&runs[1], part)
        ));
    }
    let rest = |(p, wall, _): &(Profile, f64, u64)| {
        let t = wall - p.values().map(|(d, _)| d.as_secs_f64()).sum::<f64>();
        format!(" | {} | {:.0}%", secs(t), 100.0 * t / wall)
    };
    o.push_str(&format!(
        "| between statements (the runner, the client){} |{} |\n",
        rest(&runs[0]),
        rest(&runs[1])
    ));
    let total = |(p, wall, batches): &(Profile, f64, u64)| {
        let n: u64 = p.values().map(|(_, n)| n).sum();
        format!(
            "{n} ({:.1} a batch) | {} (wall, {batches} batches) | 100%",
            n as f64 / (*batches).max(1) as f64,
            secs(*wall)
        )
    };
    o.push_str(&format!(
        "| **all** | {} | {} |\n",
        total(&runs[0]),
        total(&runs[1])
    ));
}
