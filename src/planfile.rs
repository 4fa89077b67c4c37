//! The reviewed plan (`plan --out plan.json`) and the gate that refuses to apply anything else
//! (`apply --expect-plan plan.json`).

use crate::error::{Error, Result};
use crate::migration::Plan;
use crate::runner::PlanReport;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const FORMAT: &str = "backfill-plan/1";

/// What a reviewer approved for one migration: its code and its counts per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reviewed {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub total: u64,
    pub counts: BTreeMap<i64, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    /// SHA-256 over the reviewed entries; detects a file edited after review.
    pub fingerprint: String,
    pub migrations: Vec<Reviewed>,
}

pub fn reviewed(version: i64, name: &str, checksum: &str, plan: &Plan) -> Reviewed {
    Reviewed {
        version,
        name: name.into(),
        checksum: checksum.into(),
        total: plan.total,
        counts: plan.groups.iter().map(|g| (g.key, g.count)).collect(),
    }
}

fn fingerprint(migrations: &[Reviewed]) -> String {
    let canonical = serde_json::to_string(migrations).unwrap_or_default();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses a `--out` path that cannot be written, before any planning work.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write plan file {}: it is a directory; name a file, e.g. plan.json",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write plan file {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

pub fn write(path: &Path, reports: &[PlanReport]) -> Result<()> {
    let migrations: Vec<Reviewed> = reports
        .iter()
        .map(|r| reviewed(r.version, &r.name, &r.checksum, &r.plan))
        .collect();
    let file = PlanFile {
        format: FORMAT.into(),
        fingerprint: fingerprint(&migrations),
        migrations,
    };
    let text = serde_json::to_string_pretty(&file)
        .map_err(|e| Error::Runtime(format!("cannot encode the plan: {e}")))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| Error::Usage(format!("cannot write plan file {}: {e}", path.display())))
}

pub fn read(path: &Path) -> Result<PlanFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read plan file {}: {e}", path.display())))?;
    let file: PlanFile = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "plan file {} is not a backfill plan ({e}); write it with `backfill plan --out`",
            path.display()
        ))
    })?;
    if file.format != FORMAT {
        return Err(Error::Usage(format!(
            "plan file {} has format `{}`, expected `{FORMAT}`",
            path.display(),
            file.format
        )));
    }
    if fingerprint(&file.migrations) != file.fingerprint {
        return Err(Error::Refused(format!(
            "plan file {} was edited after it was written (fingerprint mismatch); run `backfill plan --out` again and review it",
            path.display()
        )));
    }
    Ok(file)
}

/// Refuses when the migration about to run is not what was reviewed: other code, or other counts.
pub fn gate(file: &PlanFile, now: &Reviewed) -> Result<()> {
    let Some(seen) = file.migrations.iter().find(|m| m.version == now.version) else {
        return Err(Error::Refused(format!(
            "V{}__{} is not in the reviewed plan; run `backfill plan --out` again and review it",
            now.version, now.name
        )));
    };
    if seen.checksum != now.checksum {
        return Err(Error::Refused(format!(
            "V{}__{} changed since the plan was reviewed (checksum differs); plan and review again",
            now.version, now.name
        )));
    }
    if seen.counts != now.counts {
        let keys: std::collections::BTreeSet<i64> = seen
            .counts
            .keys()
            .chain(now.counts.keys())
            .copied()
            .collect();
        let diffs: Vec<String> = keys
            .into_iter()
            .filter_map(|k| {
                let (a, b) = (
                    seen.counts.get(&k).copied().unwrap_or(0),
                    now.counts.get(&k).copied().unwrap_or(0),
                );
                (a != b).then(|| format!("scenario {k}: reviewed {a}, now {b}"))
            })
            .collect();
        return Err(Error::Refused(format!(
            "the data changed since the plan was reviewed for V{}__{} ({}); plan and review again",
            now.version,
            now.name,
            diffs.join("; ")
        )));
    }
    Ok(())
}
