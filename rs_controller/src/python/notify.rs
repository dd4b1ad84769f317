//! Run notifications, delivered by the code the embedded backend uses (local runs end here).

use flyte_backend::notify::{check_rules, condition_webhook, deliver, RunOutcome};
use flyteidl2::flyteidl::common::ActionPhase;
use flyteidl2::flyteidl::task::InlineRuleList;
use flyteidl2::flyteidl::workflow::ConditionWebhook;
use prost::Message;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

fn decode(rules: &[u8]) -> PyResult<InlineRuleList> {
    InlineRuleList::decode(rules)
        .map_err(|e| PyValueError::new_err(format!("not a task.InlineRuleList: {e}")))
}

/// Checks notification rules (a serialized `task.InlineRuleList`) as the embedded backend
/// does when a run is created, raising ValueError for one that cannot be delivered; named
/// delivery configs pass only with `allow_named` (a cluster may define them).
#[pyfunction]
#[pyo3(signature = (rules, allow_named))]
fn check_notification_rules(rules: &[u8], allow_named: bool) -> PyResult<()> {
    check_rules(&decode(rules)?, allow_named).map_err(PyValueError::new_err)
}

/// Delivers the rules that match a finished run's phase (`succeeded`, `failed`, `timed_out`,
/// `aborted`); returns the deliveries that failed (they never fail the run).
#[pyfunction]
#[pyo3(signature = (rules, org, project, domain, name, phase, error))]
#[allow(clippy::too_many_arguments)]
fn deliver_notifications(
    py: Python<'_>,
    rules: &[u8],
    org: String,
    project: String,
    domain: String,
    name: String,
    phase: &str,
    error: String,
) -> PyResult<Vec<String>> {
    let rules = decode(rules)?;
    let phase = match phase {
        "succeeded" => ActionPhase::Succeeded,
        "failed" => ActionPhase::Failed,
        "timed_out" => ActionPhase::TimedOut,
        "aborted" => ActionPhase::Aborted,
        other => {
            return Err(PyValueError::new_err(format!(
                "{other:?} is not a phase a run ends in"
            )))
        }
    };
    let outcome = RunOutcome {
        org,
        project,
        domain,
        name,
        phase,
        error,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a runtime: {e}")))?;
    Ok(py.allow_threads(|| runtime.block_on(deliver(&rules, &outcome))))
}

/// Fires a condition's webhook (a serialized `workflow.ConditionWebhook`) as the embedded
/// backend does, with `{callback_uri}` filled in; returns why it failed, or None.
#[pyfunction]
fn fire_condition_webhook(
    py: Python<'_>,
    webhook: &[u8],
    callback_uri: &str,
) -> PyResult<Option<String>> {
    let hook = ConditionWebhook::decode(webhook)
        .map_err(|e| PyValueError::new_err(format!("not a workflow.ConditionWebhook: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a runtime: {e}")))?;
    Ok(py
        .allow_threads(|| runtime.block_on(condition_webhook(&hook, callback_uri)))
        .err())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(fire_condition_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(check_notification_rules, m)?)?;
    m.add_function(wrap_pyfunction!(deliver_notifications, m)?)
}
