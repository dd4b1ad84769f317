//! Rows of the state database as plain Rust values.

use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::workflow::ActionType;

use crate::names::RunKey;
use crate::procfs::ProcessRef;

/// What an action does: a task is executed by the backend; a trace is recorded only; a
/// condition waits, without a process, for a value signalled from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Task,
    Trace,
    Condition,
}

impl ActionKind {
    /// The kind's name as the SDK spells it ("task", "trace", "condition").
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Task => "task",
            ActionKind::Trace => "trace",
            ActionKind::Condition => "condition",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "task" => Some(ActionKind::Task),
            "trace" => Some(ActionKind::Trace),
            "condition" => Some(ActionKind::Condition),
            _ => None,
        }
    }

    /// Stored as its `workflow.ActionType` number, which ListActions filters compare with.
    pub(super) fn to_db(self) -> i64 {
        (match self {
            ActionKind::Task => ActionType::Task,
            ActionKind::Trace => ActionType::Trace,
            ActionKind::Condition => ActionType::Condition,
        }) as i64
    }

    pub(super) fn from_db(value: i64) -> Self {
        match value {
            TRACE_KIND => ActionKind::Trace,
            CONDITION_KIND => ActionKind::Condition,
            _ => ActionKind::Task,
        }
    }
}

const TRACE_KIND: i64 = ActionType::Trace as i64;
/// How a condition action is stored in `actions.kind`.
pub(super) const CONDITION_KIND: i64 = ActionType::Condition as i64;

#[derive(Clone, Debug)]
pub struct RunRecord {
    /// Serialized `flyteidl2.task.RunSpec`, when the client sent one.
    pub run_spec: Option<Vec<u8>>,
    pub created_ms: i64,
    /// The trigger that started the run, if one did.
    pub trigger: Option<RunTrigger>,
}

/// A trigger that started a run: its task's name, its own name and its revision then (the
/// run's project and domain are the trigger's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunTrigger {
    pub task_name: String,
    pub name: String,
    pub revision: i64,
}

#[derive(Clone, Debug)]
pub struct ActionRecord {
    /// Insertion order: FIFO scheduling order and the ListActions page token.
    pub seq: i64,
    pub run: RunKey,
    pub name: String,
    pub parent: Option<String>,
    pub group: String,
    pub kind: ActionKind,
    /// Serialized `workflow.TaskAction` or `workflow.TraceAction`, per `kind`.
    pub spec: Vec<u8>,
    /// Task identity, kept in columns so runs can be listed by task.
    pub task_name: String,
    pub task_version: String,
    pub input_uri: String,
    /// Base URI (trailing '/') under which `<action>/<attempt>/` output prefixes are made.
    pub run_output_base: String,
    pub phase: ActionPhase,
    /// Attempts started so far; the current attempt's number (1-based) when running.
    pub attempts: u32,
    /// Attempts that were relaunches after a crash (not counted against the task's retries).
    pub system_retries: u32,
    /// Attempts a stop or crash of the backend interrupted (counted against no budget).
    pub restarts: u32,
    /// Serialized `core.ExecutionError` of the final failure.
    pub error: Option<Vec<u8>>,
    /// Output prefix of the successful attempt (trace: the reported output reference).
    pub output_uri: Option<String>,
    pub abort_reason: Option<String>,
    /// When the action was first queued.
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// The running attempt's process (it leads its own process group).
    pub process: Option<ProcessRef>,
    /// Bumped by every change, so a watcher can tell an older state from a newer one.
    pub version: u64,
    /// Succeeded from the cache, without running.
    pub cache_hit: bool,
    /// A condition's signalled value: a serialized `core.Literal` (other kinds: None).
    pub value: Option<Vec<u8>>,
}

impl ActionRecord {
    /// Attempts that count against the task's own retry budget.
    pub fn user_attempts(&self) -> u32 {
        self.attempts
            .saturating_sub(self.system_retries)
            .saturating_sub(self.restarts)
    }
}

#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub phase: ActionPhase,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// Serialized `core.ExecutionError` of this attempt's failure.
    pub error: Option<Vec<u8>>,
    pub output_uri: Option<String>,
    pub log_path: String,
}

/// How a waiting condition ends.
#[derive(Clone, Copy, Debug)]
pub enum ConditionEnd<'a> {
    /// With this value (a serialized `core.Literal`).
    Signalled(&'a [u8]),
    /// Unsignalled past its timeout, with this error (a serialized `core.ExecutionError`).
    TimedOut(&'a [u8]),
}

/// An action to insert.
#[derive(Clone, Debug)]
pub struct NewAction {
    pub run: RunKey,
    pub name: String,
    pub parent: Option<String>,
    pub group: String,
    pub kind: ActionKind,
    pub spec: Vec<u8>,
    pub task_name: String,
    pub task_version: String,
    pub input_uri: String,
    pub run_output_base: String,
    pub phase: ActionPhase,
    pub attempts: u32,
    pub output_uri: Option<String>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub cache_hit: bool,
}

/// How an attempt ended and what happens to its action next.
#[derive(Clone, Debug)]
pub struct AttemptEnd {
    pub attempt_phase: ActionPhase,
    pub error: Option<Vec<u8>>,
    pub output_uri: Option<String>,
    pub ended_ms: i64,
    pub next: NextStep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// The action ends in this terminal phase with the attempt's error/outputs.
    Finish(ActionPhase),
    /// The action is queued for another attempt, to start after `delay`; `system` marks a
    /// crash relaunch.
    Retry {
        system: bool,
        delay: std::time::Duration,
    },
    /// The attempt was interrupted by a backend shutdown: queue again without using a retry.
    Requeue,
}

/// A phase reported from outside (the Update RPC).
#[derive(Clone, Debug)]
pub struct ReportedPhase {
    pub phase: ActionPhase,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    /// Where the outputs are, for a reported success.
    pub output_uri: Option<String>,
}

/// The result of applying an externally reported phase.
#[derive(Debug)]
pub enum PhaseUpdate {
    Applied(Box<ActionRecord>),
    Unchanged,
    Refused { current: ActionPhase },
}

/// Which runs ListRuns returns; `None` fields match anything.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub org: Option<String>,
    pub project: Option<String>,
    pub domain: Option<String>,
    pub task_name: Option<String>,
    pub task_version: Option<String>,
    /// Runs a trigger started: (its task's name, its name).
    pub trigger: Option<(String, String)>,
    /// Only runs with an action in PAUSED (a condition waiting for its value).
    pub paused_only: bool,
}
