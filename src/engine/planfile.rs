//! The reviewed plan (`plan --out plan.json`) and the gate that refuses to apply anything else
//! (`apply --expect-plan plan.json`): other code, other counts, or another database.
//!
//! The file is written whole or not at all: into a temporary file beside it, synced, then renamed
//! over it, so a crash (kill -9, a full disk) leaves the previous plan in place.

use crate::db::{Dialect, Identity, Session, Target};
use crate::error::{Error, Result};
use crate::kit::migration::Plan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const FORMAT: &str = "backfill-plan/2";
/// Plan files of backfill before the target was recorded.
const FORMAT_WITHOUT_TARGET: &str = "backfill-plan/1";

/// The database a plan was made on: where the URL pointed (never its password), and what the
/// server itself said it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTarget {
    pub dialect: Dialect,
    /// Host and port of the URL (servers only).
    pub host: Option<String>,
    pub port: Option<u16>,
    /// The database the URL names (the file, for SQLite).
    pub database: String,
    /// The server's own name for the database and its identity (`Session::identity`).
    pub server: Identity,
}

impl PlanTarget {
    /// The target a session reached.
    pub fn of(target: &Target, session: &mut dyn Session) -> Result<PlanTarget> {
        Ok(PlanTarget {
            dialect: target.dialect,
            host: target.host.clone(),
            port: target.port,
            database: target.database.clone(),
            server: session.identity()?,
        })
    }

    fn describe(&self) -> String {
        let place = match (&self.host, self.port) {
            (Some(h), Some(p)) => format!(" on {h}:{p}"),
            (Some(h), None) => format!(" on {h}"),
            _ => String::new(),
        };
        let dialect = format!("{:?}", self.dialect).to_lowercase();
        format!(
            "{dialect} database `{}`{place} (server {})",
            self.server.database, self.server.server
        )
    }
}

/// One migration's plan, as `plan` reports it (and `--out` writes it).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanReport {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub run_id: String,
    /// The ledger state when it is not pending (e.g. `applied`: the plan is what a top-up writes).
    pub state: Option<String>,
    pub plan: Plan,
}

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
    /// Where the plan was made; `None` only in files of the old format (refused).
    #[serde(default)]
    pub target: Option<PlanTarget>,
    /// SHA-256 over the target and the reviewed entries; detects a file edited after review.
    pub fingerprint: String,
    pub migrations: Vec<Reviewed>,
}

pub(crate) fn reviewed(version: i64, name: &str, checksum: &str, plan: &Plan) -> Reviewed {
    Reviewed {
        version,
        name: name.into(),
        checksum: checksum.into(),
        total: plan.total,
        counts: plan.groups.iter().map(|g| (g.key, g.count)).collect(),
    }
}

fn fingerprint(target: Option<&PlanTarget>, migrations: &[Reviewed]) -> String {
    let canonical = match target {
        Some(t) => serde_json::to_string(&(t, migrations)),
        None => serde_json::to_string(migrations),
    }
    .unwrap_or_default();
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where `plan --out` writes: checked before any planning work, written at the end.
pub(crate) struct PlanOut {
    /// The file replaced: the path given, or the file a symlink there points to.
    path: PathBuf,
    shown: String,
}

impl PlanOut {
    /// Refuses (exit 2) a path that cannot be written: a directory, a missing or read-only
    /// directory, a read-only plan file. Proves it by creating (and removing) the temporary file.
    pub(crate) fn check(path: &Path) -> Result<PlanOut> {
        let shown = path.display().to_string();
        let cannot = |why: String| Error::Usage(format!("cannot write plan file {shown}: {why}"));
        let path = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
            }
            _ => path.to_path_buf(),
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                return Err(cannot(
                    "it is a directory; name a file, e.g. plan.json".into(),
                ))
            }
            Ok(m) if m.permissions().readonly() => {
                return Err(cannot(
                    "it is read-only (chmod u+w it, or name another file)".into(),
                ))
            }
            _ => {}
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        if dir.exists() && !dir.is_dir() {
            return Err(cannot(format!(
                "{} is not a directory; give --out a path in a directory",
                dir.display()
            )));
        }
        if !dir.is_dir() {
            return Err(cannot(format!(
                "directory {} does not exist; create it or give --out another path",
                dir.display()
            )));
        }
        let out = PlanOut {
            path,
            shown: shown.clone(),
        };
        let temp = out.temp_path();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| {
                cannot(format!(
                    "cannot create a file in {} ({e}); give --out a path where a file can be written",
                    dir.display()
                ))
            })?;
        let _ = std::fs::remove_file(&temp);
        Ok(out)
    }

    fn temp_path(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plan.json".into());
        self.path
            .with_file_name(format!(".{name}.{}.tmp", std::process::id()))
    }

    /// Writes the plan whole, then puts it in place: the previous file stays until then.
    pub(crate) fn write(&self, target: &PlanTarget, reports: &[PlanReport]) -> Result<()> {
        let migrations: Vec<Reviewed> = reports
            .iter()
            .map(|r| reviewed(r.version, &r.name, &r.checksum, &r.plan))
            .collect();
        let file = PlanFile {
            format: FORMAT.into(),
            fingerprint: fingerprint(Some(target), &migrations),
            target: Some(target.clone()),
            migrations,
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| Error::Runtime(format!("cannot encode the plan: {e}")))?;
        let temp = self.temp_path();
        let written = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Runtime(format!(
                "cannot write plan file {}: {e}; the previous file (if any) is unchanged, fix the cause and run `backfill plan --out` again",
                self.shown
            )));
        }
        // The rename is durable once the directory is synced too.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

pub(crate) fn read(path: &Path) -> Result<PlanFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read plan file {}: {e}", path.display())))?;
    let file: PlanFile = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "plan file {} is not a backfill plan ({e}); write it with `backfill plan --out`",
            path.display()
        ))
    })?;
    if file.format == FORMAT_WITHOUT_TARGET {
        return Err(Error::Refused(format!(
            "plan file {} was written by an older backfill and does not say which database it is for; run `backfill plan --out {}` again against the database to apply to, and review it",
            path.display(),
            path.display()
        )));
    }
    if file.format != FORMAT || file.target.is_none() {
        return Err(Error::Usage(format!(
            "plan file {} has format `{}`, expected `{FORMAT}`",
            path.display(),
            file.format
        )));
    }
    if fingerprint(file.target.as_ref(), &file.migrations) != file.fingerprint {
        return Err(Error::Refused(format!(
            "plan file {} was edited after it was written (fingerprint mismatch); run `backfill plan --out` again and review it",
            path.display()
        )));
    }
    Ok(file)
}

/// Refuses (exit 5) a plan made on another database: another dialect, another server, or another
/// database on it, as the servers name them (so two spellings of one URL agree).
pub(crate) fn check_target(file: &PlanFile, path: &Path, here: &PlanTarget) -> Result<()> {
    let Some(planned) = &file.target else {
        return Err(Error::Refused(format!(
            "plan file {} does not say which database it is for; run `backfill plan --out` again and review it",
            path.display()
        )));
    };
    if planned.dialect != here.dialect || planned.server != here.server {
        return Err(Error::Refused(format!(
            "plan file {} was made on {}, not on this {}; run `backfill plan --out` against this database and review it",
            path.display(),
            planned.describe(),
            here.describe()
        )));
    }
    Ok(())
}

/// Refuses when the migration about to run is not what was reviewed: other code, or other counts.
/// Refuses unless `now` equals the reviewed entry; `label` names a group in the message (`scenario`).
pub(crate) fn gate(file: &PlanFile, now: &Reviewed, label: &str) -> Result<()> {
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
                (a != b).then(|| format!("{label} {k}: reviewed {a}, now {b}"))
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
