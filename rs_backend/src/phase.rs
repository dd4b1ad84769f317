//! The action phase state machine.
//!
//! Phases are flyteidl2 `common.ActionPhase`. An action moves freely between non-terminal phases
//! (a retry goes from RUNNING back to QUEUED), but once terminal it never changes again: every
//! writer (process monitor, Update RPC, abort) goes through [`check`].

use flyteidl2::flyteidl::common::ActionPhase;

pub fn is_terminal(phase: ActionPhase) -> bool {
    matches!(
        phase,
        ActionPhase::Succeeded
            | ActionPhase::Failed
            | ActionPhase::Aborted
            | ActionPhase::TimedOut
            | ActionPhase::Recovered
    )
}

/// Whether an action in this (terminal) phase has outputs to use: it succeeded, or it was
/// recovered (it had succeeded before its parent was run again).
pub fn is_success(phase: ActionPhase) -> bool {
    matches!(phase, ActionPhase::Succeeded | ActionPhase::Recovered)
}

/// A phase from the wire, rejecting unknown values and UNSPECIFIED.
pub fn from_wire(value: i32) -> Option<ActionPhase> {
    match ActionPhase::try_from(value) {
        Ok(ActionPhase::Unspecified) | Err(_) => None,
        Ok(phase) => Some(phase),
    }
}

/// A phase read back from the store; unknown values (a newer schema) read as QUEUED so the
/// action is looked at again rather than silently dropped.
pub fn from_stored(value: i32) -> ActionPhase {
    from_wire(value).unwrap_or(ActionPhase::Queued)
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Transition {
    /// The change is allowed.
    Apply,
    /// The action is already in that phase.
    Unchanged,
    /// The action is terminal and the request would change that.
    Refused,
}

pub fn check(from: ActionPhase, to: ActionPhase) -> Transition {
    if from == to {
        Transition::Unchanged
    } else if is_terminal(from) || to == ActionPhase::Unspecified {
        Transition::Refused
    } else {
        Transition::Apply
    }
}

/// A phase's name without flyteidl2's `ACTION_PHASE_` prefix ("SUCCEEDED"), as the SDK spells it.
pub fn phase_name(phase: ActionPhase) -> &'static str {
    let full = phase.as_str_name();
    full.strip_prefix("ACTION_PHASE_").unwrap_or(full)
}

/// The phase named `name`, with or without the prefix.
pub fn parse_phase(name: &str) -> Option<ActionPhase> {
    ActionPhase::from_str_name(name)
        .or_else(|| ActionPhase::from_str_name(&format!("ACTION_PHASE_{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ActionPhase; 11] = [
        ActionPhase::Unspecified,
        ActionPhase::Queued,
        ActionPhase::WaitingForResources,
        ActionPhase::Initializing,
        ActionPhase::Running,
        ActionPhase::Succeeded,
        ActionPhase::Failed,
        ActionPhase::Aborted,
        ActionPhase::TimedOut,
        ActionPhase::Paused,
        ActionPhase::Recovered,
    ];

    #[test]
    fn terminal_phases_never_change() {
        for from in ALL.into_iter().filter(|p| is_terminal(*p)) {
            for to in ALL {
                let expected = if from == to {
                    Transition::Unchanged
                } else {
                    Transition::Refused
                };
                assert_eq!(check(from, to), expected, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn non_terminal_phases_move_anywhere_but_unspecified() {
        for from in ALL
            .into_iter()
            .filter(|p| !is_terminal(*p) && *p != ActionPhase::Unspecified)
        {
            for to in ALL {
                let expected = if from == to {
                    Transition::Unchanged
                } else if to == ActionPhase::Unspecified {
                    Transition::Refused
                } else {
                    Transition::Apply
                };
                assert_eq!(check(from, to), expected, "{from:?} -> {to:?}");
            }
        }
        // A retry re-queues a running action.
        assert_eq!(
            check(ActionPhase::Running, ActionPhase::Queued),
            Transition::Apply
        );
    }

    #[test]
    fn wire_values() {
        assert_eq!(from_wire(0), None);
        assert_eq!(from_wire(5), Some(ActionPhase::Succeeded));
        assert_eq!(from_wire(99), None);
        assert_eq!(from_wire(-1), None);
        assert_eq!(from_stored(99), ActionPhase::Queued);
    }

    #[test]
    fn phases_are_named_as_local_mode_names_them() {
        assert_eq!(parse_phase("SUCCEEDED"), Some(ActionPhase::Succeeded));
        assert_eq!(parse_phase("RECOVERED"), Some(ActionPhase::Recovered));
        assert_eq!(
            parse_phase("ACTION_PHASE_FAILED"),
            Some(ActionPhase::Failed)
        );
        assert_eq!(parse_phase("nope"), None);
        assert_eq!(phase_name(ActionPhase::TimedOut), "TIMED_OUT");
    }
}
