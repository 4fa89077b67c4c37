//! The SVG plots, drawn by the harness itself (plotters, SVG backend only).

use crate::databases::Kind;
use crate::figures::{BatchEvent, GrowthPoint};
use anyhow::{anyhow, Context as _, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

pub(crate) const STYLES: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
];

/// A line of the growth plot: its name, which time it plots, its marker.
pub(crate) type Series = (&'static str, fn(&GrowthPoint) -> f64, Mark);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Cross,
    Circle,
    Triangle,
}

pub(crate) fn err(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("drawing a plot: {e:?}")
}

/// Writes `rows-per-second.svg` (rows/s against size, per dialect: the best single statement,
/// `apply`, `apply --jobs N`) and `batches-<dialect>.svg` (the batch durations of `apply` and
/// `apply --jobs N` over one run at the largest size); returns their paths.
pub fn write(dir: &Path, points: &[GrowthPoint], jobs: u64) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = vec![rows_per_second(dir, points, jobs)?];
    let kinds = kinds(points);
    for kind in kinds {
        let largest = points
            .iter()
            .filter(|p| p.kind == kind)
            .max_by_key(|p| p.size);
        // A point read back without its batches (`--replot` of hand-kept figures) has no
        // timeline to draw.
        if let Some(p) = largest.filter(|p| !p.timeline_apply.is_empty()) {
            written.push(batches(dir, p, jobs)?);
        }
    }
    Ok(written)
}

pub(crate) fn rows_per_second(dir: &Path, points: &[GrowthPoint], jobs: u64) -> Result<PathBuf> {
    let path = dir.join("rows-per-second.svg");
    let root = SVGBackend::new(&path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let min = points.iter().map(|p| p.size).min().unwrap_or(1).max(1) as f64;
    let max = points.iter().map(|p| p.size).max().unwrap_or(1).max(1) as f64;
    let top = points
        .iter()
        .flat_map(|p| [p.statement, p.apply, p.jobs].map(|t| p.rows as f64 / t))
        .filter(|r| r.is_finite())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "rows written per second against size (higher is better)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((min * 0.8..max * 1.25).log_scale(), 0.0..top * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("competencies")
        .y_desc("rows/s")
        .x_label_formatter(&|x| format!("{:.0}k", x / 1000.0))
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .draw()
        .map_err(err)?;
    let kinds = kinds(points);
    for (k, kind) in kinds.iter().enumerate() {
        let color = STYLES[k % STYLES.len()];
        draw_kind(&mut chart, *kind, points, color, jobs)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(path.clone())
}

pub(crate) fn batches(dir: &Path, p: &GrowthPoint, jobs: u64) -> Result<PathBuf> {
    let name = p.kind.label().to_lowercase();
    let path = dir.join(format!("batches-{name}.svg"));
    let root = SVGBackend::new(&path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let all = p.timeline_apply.iter().chain(&p.timeline_jobs);
    let right = all.clone().map(|e| e.end).fold(1.0, f64::max);
    // Up to at least the 1 s limit, drawn as a line.
    let top = all.map(|e| e.secs * 1000.0).fold(1000.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: every batch transaction of one apply, {} competencies (one dot each)",
                p.kind.label(),
                p.size
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..right * 1.02, 0.0..top * 1.15)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run (batch end)")
        .y_desc("batch duration, ms")
        .draw()
        .map_err(err)?;
    let runs = [
        ("apply, 1 job".to_string(), &p.timeline_apply),
        (format!("apply --jobs {jobs}"), &p.timeline_jobs),
    ];
    for (i, (label, events)) in runs.iter().enumerate() {
        let color = STYLES[i % STYLES.len()];
        draw_run(&mut chart, label, events, color)?;
    }
    let limit = BLACK.mix(0.4);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 1000.0), (right * 1.02, 1000.0)],
            6,
            4,
            limit.into(),
        ))
        .map_err(err)?
        .label("the 1 s limit for one batch")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], limit));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(path.clone())
}

/// The dialects among `points`, in their order.
fn kinds(points: &[GrowthPoint]) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = Vec::new();
    for p in points {
        if !kinds.contains(&p.kind) {
            kinds.push(p.kind);
        }
    }
    kinds
}

type SizeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, RangedCoordf64>>;
type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One series' marks, one per point.
fn draw_marks(
    chart: &mut SizeChart,
    data: &[(f64, f64)],
    mark: Mark,
    color: RGBColor,
) -> Result<()> {
    for &(x, y) in data {
        match mark {
            Mark::Cross => chart
                .draw_series(std::iter::once(Cross::new(
                    (x, y),
                    5,
                    color.stroke_width(2),
                )))
                .map(|_| ()),
            Mark::Circle => chart
                .draw_series(std::iter::once(Circle::new((x, y), 4, color.filled())))
                .map(|_| ()),
            Mark::Triangle => chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (x, y),
                    6,
                    color.filled(),
                )))
                .map(|_| ()),
        }
        .map_err(err)?;
    }
    Ok(())
}

/// One run's batches: a line and dots per worker, the run's label on the first.
fn draw_run(
    chart: &mut TimeChart,
    label: &str,
    events: &[BatchEvent],
    color: RGBColor,
) -> Result<()> {
    let mut workers: Vec<usize> = events.iter().map(|e| e.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    for (n, w) in workers.iter().enumerate() {
        let data: Vec<(f64, f64)> = events
            .iter()
            .filter(|e| e.worker == *w)
            .map(|e| (e.end, e.secs * 1000.0))
            .collect();
        let series = chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(1)))
            .map_err(err)?;
        if n == 0 {
            series
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .draw_series(
                data.iter()
                    .map(|&(x, y)| Circle::new((x, y), 2, color.filled())),
            )
            .map_err(err)?;
    }
    Ok(())
}

/// One dialect's three series (best single statement, apply, apply --jobs N), each a line with a
/// mark per size.
fn draw_kind(
    chart: &mut SizeChart,
    kind: Kind,
    points: &[GrowthPoint],
    color: RGBColor,
    jobs: u64,
) -> Result<()> {
    let mine: Vec<&GrowthPoint> = points.iter().filter(|p| p.kind == kind).collect();
    let series: [Series; 3] = [
        ("best single statement", |p| p.statement, Mark::Cross),
        ("apply, 1 job", |p| p.apply, Mark::Circle),
        ("apply --jobs N", |p| p.jobs, Mark::Triangle),
    ];
    for (name, time, mark) in series {
        let data: Vec<(f64, f64)> = mine
            .iter()
            .map(|p| (p.size as f64, p.rows as f64 / time(p)))
            .filter(|(_, r)| r.is_finite())
            .collect();
        let label = format!("{}: {}", kind.label(), name.replace('N', &jobs.to_string()));
        let line = color.stroke_width(if mark == Mark::Triangle { 3 } else { 1 });
        let drawn = if mark == Mark::Cross {
            chart.draw_series(DashedLineSeries::new(data.clone(), 6, 4, line))
        } else {
            chart.draw_series(LineSeries::new(data.clone(), line))
        };
        drawn
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
        draw_marks(chart, &data, mark, color)?;
    }
    Ok(())
}
