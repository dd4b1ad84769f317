//! Fires due triggers as runs of their deployed tasks.
//!
//! Once a second every active scheduled trigger is checked for a due tick (see
//! [`Schedule::due_tick`]: the latest tick since its activation or last firing, so missed
//! ticks collapse into one catch-up run). The run is named after the trigger and the tick, so
//! a tick is fired at most once even when the backend stops between creating the run and
//! recording it: the second attempt finds the run and only records it.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Code;

use flyteidl2::flyteidl::core::{literal, primitive, scalar, Literal, Primitive, Scalar};
use flyteidl2::flyteidl::task::{
    trigger_automation_spec, Inputs, NamedLiteral, TaskIdentifier, TriggerAutomationSpec,
    TriggerAutomationSpecType,
};
use flyteidl2::flyteidl::trigger::{trigger_spec, TriggerSpec};
use flyteidl2::flyteidl::workflow::TaskAction;

use crate::clock::{now_ms, timestamp};
use crate::engine::{Engine, RunInputs, RunRequest};
use crate::names::RunKey;
use crate::schedule;
use crate::services::tasks::deployed_spec;
use crate::store::{RunTrigger, TriggerKey, TriggerRow};
use crate::validate::with_defaults;

/// How often due triggers are looked for.
const PERIOD: Duration = Duration::from_secs(1);

/// The run of one tick of one trigger: "r" and 19 hex digits, like generated run names.
pub fn tick_run_name(key: &TriggerKey, tick_ms: i64) -> String {
    let digest = Sha256::digest(format!(
        "{}:{}:{}:{}:{tick_ms}",
        key.project, key.domain, key.task_name, key.name
    ));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("r{}", &hex[..19])
}

fn kickoff_input(automation: &TriggerAutomationSpec) -> Option<String> {
    match &automation.automation {
        Some(trigger_automation_spec::Automation::Schedule(s)) => {
            (!s.kickoff_time_input_arg.is_empty()).then(|| s.kickoff_time_input_arg.clone())
        }
        _ => None,
    }
}

/// The run request for a tick: the deployed task version the trigger names, the trigger's
/// inputs with the task's defaults and the kick-off time, the trigger's run spec.
fn run_request(
    engine: &Engine,
    row: &TriggerRow,
    spec: TriggerSpec,
    automation: &TriggerAutomationSpec,
    tick_ms: i64,
) -> Result<RunRequest, String> {
    let key = &row.key;
    let task_id = TaskIdentifier {
        org: String::new(),
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: key.task_name.clone(),
        version: spec.task_version.clone(),
    };
    let task_spec = deployed_spec(engine, &task_id).map_err(|s| s.message().to_string())?;
    let inputs = match spec.input_wrapper {
        Some(trigger_spec::InputWrapper::OffloadedInputData(offloaded)) => {
            RunInputs::Offloaded(offloaded.uri)
        }
        inline => {
            let given = match inline {
                Some(trigger_spec::InputWrapper::Inputs(inputs)) => inputs,
                _ => Inputs::default(),
            };
            let inputs = with_kickoff(given, automation, tick_ms);
            RunInputs::Inline(with_defaults(inputs, &task_spec))
        }
    };
    let mut run_spec = spec.run_spec.unwrap_or_default();
    run_spec.run_start_time = Some(timestamp(tick_ms));
    Ok(RunRequest {
        run: RunKey {
            org: String::new(),
            project: key.project.clone(),
            domain: key.domain.clone(),
            name: tick_run_name(key, tick_ms),
        },
        task: TaskAction {
            id: Some(task_id),
            spec: Some(task_spec),
            cache_key: None,
            queue: run_spec.queue.clone(),
        },
        inputs,
        run_spec: Some(run_spec),
        trigger: Some(RunTrigger {
            task_name: key.task_name.clone(),
            name: key.name.clone(),
            revision: row.revision,
        }),
    })
}

/// The trigger's inputs with the kick-off time in the input the schedule names.
fn with_kickoff(mut inputs: Inputs, automation: &TriggerAutomationSpec, tick_ms: i64) -> Inputs {
    if let Some(name) = kickoff_input(automation) {
        inputs.literals.retain(|l| l.name != name);
        inputs.literals.push(NamedLiteral {
            name,
            value: Some(Literal {
                value: Some(literal::Value::Scalar(Box::new(Scalar {
                    value: Some(scalar::Value::Primitive(Primitive {
                        value: Some(primitive::Value::Datetime(timestamp(tick_ms))),
                    })),
                }))),
                ..Default::default()
            }),
        });
    }
    inputs
}

/// Fires every trigger with a tick due at `now_ms`; returns how many runs were started.
pub async fn fire_due(engine: &Engine, now_ms_: i64) -> usize {
    let rows = match engine.store.trigger_active() {
        Ok(rows) => rows,
        Err(err) => {
            tracing::error!(%err, "listing active triggers failed");
            return 0;
        }
    };
    let mut started = 0;
    for row in rows {
        let (Ok(spec), Ok(automation)) = (
            TriggerSpec::decode(row.spec.as_slice()),
            TriggerAutomationSpec::decode(row.automation.as_slice()),
        ) else {
            tracing::error!(trigger = %row.key.name, "a stored trigger does not decode");
            continue;
        };
        if automation.r#type != TriggerAutomationSpecType::TypeSchedule as i32 {
            continue;
        }
        let Ok(schedule) = schedule::from_spec(&automation) else {
            continue;
        };
        let Some(tick) = schedule.due_tick(row.since_ms(), now_ms_) else {
            continue;
        };
        let outcome = match run_request(engine, &row, spec, &automation, tick) {
            Ok(request) => engine.create_run(request).await.map(|_| true).or_else(|s| {
                // The run of this tick exists: it was created before a restart.
                if s.code() == Code::AlreadyExists {
                    Ok(false)
                } else {
                    Err(s.message().to_string())
                }
            }),
            Err(message) => Err(message),
        };
        match outcome {
            Ok(created) => started += usize::from(created),
            // A tick that cannot start (its task version is gone, its inputs do not fit) is
            // reported and skipped; retrying it every second would only repeat the error.
            Err(message) => tracing::warn!(
                trigger = %row.key.name, task = %row.key.task_name, tick, %message,
                "a trigger's run could not be created; the tick is skipped"
            ),
        }
        if let Err(err) = engine.store.trigger_fired(&row.key, tick, now_ms()) {
            tracing::error!(%err, "recording a trigger's tick failed");
        }
    }
    started
}

/// Fires due triggers until the backend stops.
pub async fn run(engine: Arc<Engine>) {
    let mut stop = engine.stop_signal();
    loop {
        fire_due(&engine, now_ms()).await;
        tokio::select! {
            () = tokio::time::sleep(PERIOD) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
    }
}
