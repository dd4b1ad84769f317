//! Statuses reported from outside through ActionsService.Update.

use flyteidl2::flyteidl::common::ActionPhase;
use tonic::Status;

use super::{internal, Engine};
use crate::clock::now_ms;
use crate::layout::attempt_prefix;
use crate::names::RunKey;
use crate::phase;
use crate::store::{ActionKind, PhaseUpdate, ReportedPhase};

/// A validated Update.
#[derive(Debug)]
pub struct StatusReport {
    pub run: RunKey,
    pub name: String,
    /// 0 when the reporter does not name an attempt.
    pub attempt: u32,
    pub phase: ActionPhase,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

impl Engine {
    pub fn report_status(&self, report: StatusReport) -> Result<(), Status> {
        let run = &report.run;
        let record = self
            .store
            .action(run, &report.name)
            .map_err(|e| internal("look up action", e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "action {:?} does not exist in run {run}",
                    report.name
                ))
            })?;
        if report.attempt != 0 && report.attempt != record.attempts {
            return Err(Status::failed_precondition(format!(
                "attempt {} of action {:?} is not the current attempt (current: {})",
                report.attempt, report.name, record.attempts
            )));
        }
        // A task reported as succeeded left its outputs where every attempt does, under the
        // current attempt's prefix; recording it keeps GetActionData and watchers coherent.
        let output_uri = (report.phase == ActionPhase::Succeeded
            && record.kind == ActionKind::Task
            && record.attempts > 0)
            .then(|| attempt_prefix(&record.run_output_base, &record.name, record.attempts))
            .and_then(Result::ok)
            .map(|(_, uri)| uri);
        let reported = ReportedPhase {
            phase: report.phase,
            started_ms: report.started_ms,
            ended_ms: report.ended_ms,
            output_uri,
        };
        let outcome = self
            .store
            .set_phase(record.seq, &reported, now_ms())
            .map_err(|e| internal("update action phase", e))?;
        match outcome {
            None => Err(Status::not_found(format!(
                "action {:?} does not exist in run {run}",
                report.name
            ))),
            Some(PhaseUpdate::Unchanged) => Ok(()),
            Some(PhaseUpdate::Refused { current }) => Err(Status::failed_precondition(format!(
                "action {:?} is already {}; a finished action cannot change phase",
                report.name,
                current.as_str_name()
            ))),
            Some(PhaseUpdate::Applied(updated)) => {
                let terminal = phase::is_terminal(updated.phase);
                let label = updated.phase.as_str_name();
                self.publish(*updated);
                if terminal {
                    self.abort_descendants(
                        run,
                        &report.name,
                        &format!("parent action {} finished ({label})", report.name),
                    )
                    .map_err(|e| internal("abort descendant actions", e))?;
                }
                Ok(())
            }
        }
    }
}
