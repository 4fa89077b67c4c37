//! The states of the ledger's rows, as stored (lowercase words), and what they mean.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Applied,
    Failed,
    Reverting,
    Reverted,
    /// Stopped at a checkpoint by `backfill cancel`: only an operator's `apply VERSION` resumes it
    /// (a deploy leaves it alone), or `revert VERSION` undoes it.
    Cancelled,
    /// Stopped at a checkpoint at the end of its window or budget (`--window`, `--run-for`,
    /// `--until`, `--limit`): the next apply, a deploy's too, goes on from there.
    Halted,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Applied => "applied",
            State::Failed => "failed",
            State::Reverting => "reverting",
            State::Reverted => "reverted",
            State::Cancelled => "cancelled",
            State::Halted => "halted",
        }
    }
    /// Work was in progress: either a live runner holds the lock, or the runner died.
    pub(crate) fn in_progress(self) -> bool {
        matches!(self, State::Running | State::Reverting)
    }
}

impl FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "running" => State::Running,
            "applied" => State::Applied,
            "failed" => State::Failed,
            "reverting" => State::Reverting,
            "reverted" => State::Reverted,
            "cancelled" => State::Cancelled,
            "halted" => State::Halted,
            other => return Err(other.to_string()),
        })
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Plan,
    Apply,
    Revert,
    Repair,
    Forget,
    /// The steering commands: each is an audit row (who, when, old -> new).
    Pause,
    Resume,
    Cancel,
    Set,
}

/// What a run ended as (or is): the `state` column of `backfill_runs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunState {
    Running,
    Succeeded,
    Failed,
    /// Refused for safety (exit 5) before writing anything.
    Refused,
    /// Its process died; the next runner recorded it so.
    Abandoned,
    /// Stopped by SIGINT/SIGTERM after its last committed batch.
    Interrupted,
    /// Overtaken by another runner (fencing); its open batch rolled back.
    Stopped,
    /// Stopped at a checkpoint by `backfill cancel` (exit 6).
    Cancelled,
    /// Stopped at a checkpoint at the end of its window or budget (exit 6).
    Halted,
}

impl RunState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Refused => "refused",
            RunState::Abandoned => "abandoned",
            RunState::Interrupted => "interrupted",
            RunState::Stopped => "stopped",
            RunState::Cancelled => "cancelled",
            RunState::Halted => "halted",
        }
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Refused,
            RunState::Abandoned,
            RunState::Interrupted,
            RunState::Stopped,
            RunState::Cancelled,
            RunState::Halted,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| s.to_string())
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [
            Action::Plan,
            Action::Apply,
            Action::Revert,
            Action::Repair,
            Action::Forget,
            Action::Pause,
            Action::Resume,
            Action::Cancel,
            Action::Set,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| s.to_string())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Plan => "plan",
            Action::Apply => "apply",
            Action::Revert => "revert",
            Action::Repair => "repair",
            Action::Forget => "forget",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Cancel => "cancel",
            Action::Set => "set",
        }
    }
}

/// Where a chunk of a parallel run is: `pending` (no worker), `running` (one worker of its owner
/// run), `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkState {
    Pending,
    Running,
    Done,
}

impl ChunkState {
    /// `const` so the SQL that filters on a state can spell it as a constant.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ChunkState::Pending => "pending",
            ChunkState::Running => "running",
            ChunkState::Done => "done",
        }
    }

    /// A stored word this binary does not know (a hand edit) counts as unfinished and unclaimable,
    /// as it always did: the run never ends `applied` over it, and no worker takes it.
    pub(crate) fn from_stored(s: Option<&str>) -> ChunkState {
        match s {
            Some("pending") => ChunkState::Pending,
            Some("done") => ChunkState::Done,
            _ => ChunkState::Running,
        }
    }
}
