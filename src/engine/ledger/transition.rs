//! The one state machine of a migration's ledger row: every command and every run's end asks
//! [`transition`] what a row may become, in the style of maintenance_tasks'
//! `VALID_STATUS_TRANSITIONS`. The table test below lists every allowed edge; every other pair is
//! refused.

use super::{Action, State};

/// A migration's row as the machine sees it: its state and the action of the run that set it
/// (`last_action`; `start` writes only `apply` or `revert` there). `None` in [`transition`]: the
/// migration never started (no row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status {
    pub state: State,
    pub last: Action,
}

/// What happens to a migration: a command that starts a run, or the end of that run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A deploy's `apply` (no version named), which picks up only what is its own to finish.
    Deploy,
    /// `apply VERSION`: the operator named it, whatever its state.
    Apply,
    /// `revert VERSION`: undo it whole.
    Revert,
    /// `revert VERSION --group G`; `same`: the row's unfinished revert was of this group.
    RevertGroup { same: bool },
    /// The run's last batch committed and it undid (or wrote) everything it set out to.
    Succeed,
    /// A one-group revert's last batch committed: the rest of the migration stays in place.
    SucceedGroup,
    /// The run failed or was interrupted (by a signal) after it started.
    Fail,
    /// `backfill cancel` stopped the run at a checkpoint.
    Cancel,
    /// The run stopped at a checkpoint at the end of its window or budget.
    Halt,
    /// `repair --mark-failed`: a row left in progress by a runner that is gone.
    MarkFailed,
}

/// Why [`transition`] refused; the caller words it for the user (their messages are unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A revert of a migration with no row.
    NeverApplied,
    /// A revert of a reverted migration.
    AlreadyReverted,
    /// A one-group revert of unfinished work (a failed or killed apply, an interrupted full revert).
    Unfinished,
    /// `--mark-failed` on a row no run left in progress.
    NotInProgress,
    /// Not a deploy's to run: an operator's revert, or done already.
    NotPending,
    /// The end of a run that does not hold the row in progress: a bug, never the user's doing.
    NotRunning,
}

/// What `from` becomes on `event`, or why it may not. Every edge says why it is allowed.
pub(crate) fn transition(from: Option<Status>, event: Event) -> Result<State, Refusal> {
    use State::*;
    let Some(Status { state, last }) = from else {
        return match event {
            // A migration nobody ran is pending: a deploy or an operator starts it.
            Event::Deploy | Event::Apply => Ok(Running),
            // Nothing was written, so there is nothing to undo.
            Event::Revert | Event::RevertGroup { .. } => Err(Refusal::NeverApplied),
            Event::MarkFailed => Err(Refusal::NotInProgress),
            Event::Succeed | Event::SucceedGroup | Event::Fail | Event::Cancel | Event::Halt => {
                Err(Refusal::NotRunning)
            }
        };
    };
    match event {
        Event::Deploy => deploy(state, last),
        // Every migration is idempotent: a named apply resumes an unfinished one, tops up an
        // applied one, and re-applies a reverted one.
        Event::Apply => Ok(Running),
        Event::Revert | Event::RevertGroup { .. } => revert(state, last, event),
        Event::Succeed | Event::SucceedGroup | Event::Fail | Event::Cancel | Event::Halt => {
            end(state, last, event)
        }
        // Its runner is gone (the caller holds the lock): failed, so apply or revert resumes it.
        Event::MarkFailed if state.in_progress() => Ok(Failed),
        Event::MarkFailed => Err(Refusal::NotInProgress),
    }
}

/// A deploy resumes an apply that died, failed or reached the end of its window or budget: a
/// deploy started it, and one must finish it. Reverts in progress, reverted migrations and cancelled
/// ones belong to an operator (a cancel must not be undone by the next deploy); applied ones are done.
fn deploy(state: State, last: Action) -> Result<State, Refusal> {
    match (state, last) {
        (State::Running | State::Failed | State::Halted, Action::Apply) => Ok(State::Running),
        _ => Err(Refusal::NotPending),
    }
}

fn revert(state: State, last: Action, event: Event) -> Result<State, Refusal> {
    match (state, event) {
        // Nothing of it is left in place.
        (State::Reverted, _) => Err(Refusal::AlreadyReverted),
        // A whole revert undoes whatever is in place, finished or not, and resumes its own.
        (_, Event::Revert) => Ok(State::Reverting),
        // A one-group revert is for a completed apply.
        (State::Applied, _) => Ok(State::Reverting),
        // ... or resumes its own unfinished revert of the same group.
        (
            State::Failed | State::Reverting | State::Cancelled | State::Halted,
            Event::RevertGroup { same: true },
        ) if last == Action::Revert => Ok(State::Reverting),
        // On unfinished work it would end `applied` and hide that work from deploys and `verify`.
        _ => Err(Refusal::Unfinished),
    }
}

/// The end of a run, from the state its start set.
fn end(state: State, last: Action, event: Event) -> Result<State, Refusal> {
    match (state, last, event) {
        // An apply wrote every eligible row.
        (State::Running, Action::Apply, Event::Succeed) => Ok(State::Applied),
        // A whole revert undid every row the migration wrote.
        (State::Reverting, Action::Revert, Event::Succeed) => Ok(State::Reverted),
        // A one-group revert took one group's rows away; the others are still applied.
        (State::Reverting, Action::Revert, Event::SucceedGroup) => Ok(State::Applied),
        // Failed keeps the cursor: the next apply or revert of the same kind resumes from it.
        (State::Running, Action::Apply, Event::Fail)
        | (State::Reverting, Action::Revert, Event::Fail) => Ok(State::Failed),
        // Stopped on request at a checkpoint: the cursor stays, so apply or revert resumes from it.
        (State::Running, Action::Apply, Event::Cancel)
        | (State::Reverting, Action::Revert, Event::Cancel) => Ok(State::Cancelled),
        (State::Running, Action::Apply, Event::Halt)
        | (State::Reverting, Action::Revert, Event::Halt) => Ok(State::Halted),
        _ => Err(Refusal::NotRunning),
    }
}

/// The state a run of `action` holds the row in while it works (what its start set).
pub(crate) fn working(action: Action) -> Status {
    match action {
        Action::Revert => Status {
            state: State::Reverting,
            last: Action::Revert,
        },
        _ => Status {
            state: State::Running,
            last: Action::Apply,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Apply as A, Revert as R};
    use State::*;

    const STATES: [State; 7] = [
        Running, Applied, Failed, Reverting, Reverted, Cancelled, Halted,
    ];
    const EVENTS: [Event; 11] = [
        Event::Deploy,
        Event::Apply,
        Event::Revert,
        Event::RevertGroup { same: true },
        Event::RevertGroup { same: false },
        Event::Succeed,
        Event::SucceedGroup,
        Event::Fail,
        Event::Cancel,
        Event::Halt,
        Event::MarkFailed,
    ];

    fn at(state: State, last: Action) -> Option<Status> {
        Some(Status { state, last })
    }

    /// Every allowed edge: (from, event, to).
    fn allowed() -> Vec<(Option<Status>, Event, State)> {
        let mut edges = vec![
            (None, Event::Deploy, Running),
            (at(Running, A), Event::Deploy, Running),
            (at(Failed, A), Event::Deploy, Running),
            (at(Halted, A), Event::Deploy, Running),
            (None, Event::Apply, Running),
        ];
        for state in STATES {
            for last in [A, R] {
                edges.push((at(state, last), Event::Apply, Running));
                if state != Reverted {
                    edges.push((at(state, last), Event::Revert, Reverting));
                }
                if state.in_progress() {
                    edges.push((at(state, last), Event::MarkFailed, Failed));
                }
            }
        }
        for last in [A, R] {
            for same in [true, false] {
                edges.push((at(Applied, last), Event::RevertGroup { same }, Reverting));
            }
        }
        for state in [Failed, Cancelled, Halted] {
            edges.push((at(state, R), Event::RevertGroup { same: true }, Reverting));
        }
        edges.extend([
            (
                at(Reverting, R),
                Event::RevertGroup { same: true },
                Reverting,
            ),
            (at(Running, A), Event::Succeed, Applied),
            (at(Reverting, R), Event::Succeed, Reverted),
            (at(Reverting, R), Event::SucceedGroup, Applied),
            (at(Running, A), Event::Fail, Failed),
            (at(Reverting, R), Event::Fail, Failed),
            (at(Running, A), Event::Cancel, Cancelled),
            (at(Reverting, R), Event::Cancel, Cancelled),
            (at(Running, A), Event::Halt, Halted),
            (at(Reverting, R), Event::Halt, Halted),
        ]);
        edges
    }

    #[test]
    fn every_edge_is_listed_and_every_other_pair_refused() {
        let edges = allowed();
        let mut froms = vec![None];
        froms.extend(STATES.iter().flat_map(|&s| [at(s, A), at(s, R)]));
        for from in froms {
            for event in EVENTS {
                let listed = edges.iter().find(|(f, e, _)| *f == from && *e == event);
                let got = transition(from, event);
                match listed {
                    Some((.., to)) => assert_eq!(got, Ok(*to), "{from:?} on {event:?}"),
                    None => assert!(got.is_err(), "{from:?} on {event:?} gave {got:?}"),
                }
            }
        }
    }

    #[test]
    fn refusals_name_the_reason_the_user_sees() {
        let group = Event::RevertGroup { same: false };
        assert_eq!(transition(None, Event::Revert), Err(Refusal::NeverApplied));
        assert_eq!(
            transition(at(Reverted, R), group),
            Err(Refusal::AlreadyReverted)
        );
        assert_eq!(transition(at(Failed, A), group), Err(Refusal::Unfinished));
        assert_eq!(transition(at(Failed, R), group), Err(Refusal::Unfinished));
        assert_eq!(
            transition(at(Applied, A), Event::MarkFailed),
            Err(Refusal::NotInProgress)
        );
        assert_eq!(
            transition(at(Reverting, R), Event::Deploy),
            Err(Refusal::NotPending)
        );
        assert_eq!(
            transition(at(Applied, A), Event::Fail),
            Err(Refusal::NotRunning)
        );
    }

    #[test]
    fn a_run_ends_from_the_state_its_start_set() {
        for action in [A, R] {
            let start = if action == R {
                Event::Revert
            } else {
                Event::Apply
            };
            let started = transition(at(Applied, A), start);
            assert_eq!(
                started.map(|s| Some(Status {
                    state: s,
                    last: action
                })),
                Ok(Some(working(action)))
            );
            assert_eq!(transition(Some(working(action)), Event::Fail), Ok(Failed));
        }
    }
}
