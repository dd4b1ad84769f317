//! `core-sleep` tasks (`flyte.extras.Sleep`): the backend waits out the task's one input, a
//! duration, itself; no process runs and no slot is taken. The wait counts from the action's
//! first start, so a backend restarted meanwhile waits only for what is left.

use std::sync::Arc;
use std::time::Duration;

use flyteidl2::flyteidl::core::{
    execution_error::ErrorKind, literal, literal_type, primitive, scalar, SimpleType,
    TypedInterface,
};
use flyteidl2::flyteidl::task::{Inputs, Outputs};
use prost::Message;

use super::command::input_file;
use super::outcome::{error, Verdict};
use super::spec::ExecSpec;
use super::{conclude_attempt, follow_up};
use crate::clock::now_ms;
use crate::datafile::{read_optional, write_atomic};
use crate::engine::Engine;
use crate::layout::{attempt_prefix, uri_to_path};
use crate::policy::TaskPolicy;
use crate::store::ActionRecord;
use crate::views;

pub use crate::contract::SLEEP_TASK_TYPE;

/// The error code of a sleep task that is not one (what a cluster reports).
const BAD_SPEC: &str = "BadTaskSpecification";

/// Whether the action is a sleep task.
pub fn is_sleep(record: &ActionRecord) -> bool {
    views::task_action(record)
        .and_then(|t| t.spec)
        .and_then(|s| s.task_template)
        .is_some_and(|t| t.r#type == SLEEP_TASK_TYPE)
}

/// How long a sleep task waits: its one input, typed as a duration, which must be there and
/// not negative; the task declares no outputs.
pub fn sleep_duration(
    interface: Option<&TypedInterface>,
    inputs: &Inputs,
) -> Result<Duration, String> {
    let variables = interface
        .and_then(|i| i.inputs.as_ref())
        .map(|m| m.variables.as_slice())
        .unwrap_or_default();
    let [entry] = variables else {
        return Err(format!(
            "task type [{SLEEP_TASK_TYPE}] requires exactly one duration input"
        ));
    };
    if interface
        .and_then(|i| i.outputs.as_ref())
        .is_some_and(|o| !o.variables.is_empty())
    {
        return Err(format!(
            "task type [{SLEEP_TASK_TYPE}] does not support outputs"
        ));
    }
    let name = &entry.key;
    let typed = entry
        .value
        .as_ref()
        .and_then(|v| v.r#type.as_ref())
        .and_then(|t| t.r#type.as_ref());
    if typed != Some(&literal_type::Type::Simple(SimpleType::Duration as i32)) {
        return Err(format!("input [{name}] must be typed as duration"));
    }
    let value = inputs
        .literals
        .iter()
        .find(|l| &l.name == name)
        .and_then(|l| l.value.as_ref())
        .ok_or_else(|| format!("duration input [{name}] is missing"))?;
    let duration = match value.value.as_ref() {
        Some(literal::Value::Scalar(s)) => match s.value.as_ref() {
            Some(scalar::Value::Primitive(p)) => match p.value.as_ref() {
                Some(primitive::Value::Duration(d)) => Some(d),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| format!("duration input [{name}] must be a duration literal"))?;
    if duration.seconds < 0 || duration.nanos < 0 {
        return Err(format!("duration input [{name}] must be non-negative"));
    }
    Ok(Duration::new(
        u64::try_from(duration.seconds).unwrap_or_default(),
        u32::try_from(duration.nanos).unwrap_or_default(),
    ))
}

fn read_inputs(record: &ActionRecord) -> Result<Inputs, String> {
    let uri = input_file(&record.input_uri);
    let path = uri_to_path(&uri)?;
    let bytes = read_optional(&path)
        .map_err(|e| format!("could not read the inputs {uri}: {e}"))?
        .unwrap_or_default();
    Inputs::decode(bytes.as_slice()).map_err(|e| format!("the inputs {uri} cannot be decoded: {e}"))
}

/// Starts attempt `attempt` of a sleep task (already recorded as started): it succeeds, with
/// no outputs, once the duration has passed since the action first started.
pub fn start(engine: &Arc<Engine>, record: &ActionRecord, attempt: u32) {
    let task = views::task_action(record);
    let policy = task
        .as_ref()
        .and_then(|t| ExecSpec::from_task(t).ok())
        .map(|s| s.policy)
        .unwrap_or_default();
    let interface = task
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.interface.as_ref());
    let planned = read_inputs(record)
        .and_then(|inputs| sleep_duration(interface, &inputs))
        .and_then(|duration| {
            let (dir, uri) = attempt_prefix(&record.run_output_base, &record.name, attempt)?;
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    write_atomic(&dir.join("outputs.pb"), &Outputs::default().encode_to_vec())
                })
                .map_err(|e| format!("could not write the outputs under {}: {e}", dir.display()))?;
            Ok((duration, uri))
        });
    let (duration, output_uri) = match planned {
        Ok(planned) => planned,
        Err(message) => {
            let verdict = Verdict::UserFailure {
                error: error(BAD_SPEC, ErrorKind::User, message),
                phase: flyteidl2::flyteidl::common::ActionPhase::Failed,
                retryable: false,
            };
            end(engine, record, attempt, verdict, &policy);
            return;
        }
    };
    let started = record.started_ms.unwrap_or_else(now_ms);
    let wait_ms = started
        .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
        .saturating_sub(now_ms());
    let engine = Arc::downgrade(engine);
    let record = record.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0))).await;
        if let Some(engine) = engine.upgrade() {
            // An action aborted meanwhile stays aborted: the store refuses the end.
            end(
                &engine,
                &record,
                attempt,
                Verdict::Succeeded { output_uri },
                &policy,
            );
        }
    });
}

fn end(
    engine: &Arc<Engine>,
    record: &ActionRecord,
    attempt: u32,
    verdict: Verdict,
    policy: &TaskPolicy,
) {
    if let Some(concluded) = conclude_attempt(engine, record, attempt, verdict, policy) {
        follow_up(engine, &concluded);
    }
}

#[cfg(test)]
mod tests {
    use flyteidl2::flyteidl::core::{
        literal_type, Literal, LiteralType, Primitive, Scalar, Variable, VariableEntry, VariableMap,
    };
    use flyteidl2::flyteidl::task::NamedLiteral;
    use flyteidl2::google::protobuf::Duration as PbDuration;

    use super::*;

    fn vars(entries: &[(&str, SimpleType)]) -> VariableMap {
        VariableMap {
            variables: entries
                .iter()
                .map(|(name, t)| VariableEntry {
                    key: (*name).into(),
                    value: Some(Variable {
                        r#type: Some(LiteralType {
                            r#type: Some(literal_type::Type::Simple(*t as i32)),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                })
                .collect(),
        }
    }

    fn duration_input(seconds: i64) -> Inputs {
        Inputs {
            literals: vec![NamedLiteral {
                name: "duration".into(),
                value: Some(Literal {
                    value: Some(literal::Value::Scalar(Box::new(Scalar {
                        value: Some(scalar::Value::Primitive(Primitive {
                            value: Some(primitive::Value::Duration(PbDuration {
                                seconds,
                                nanos: 0,
                            })),
                        })),
                    }))),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_sleep_takes_one_duration_and_gives_nothing_back() {
        let good = TypedInterface {
            inputs: Some(vars(&[("duration", SimpleType::Duration)])),
            outputs: None,
        };
        assert_eq!(
            sleep_duration(Some(&good), &duration_input(3)),
            Ok(Duration::from_secs(3))
        );
        let err = |interface: &TypedInterface, inputs: &Inputs| {
            sleep_duration(Some(interface), inputs).unwrap_err()
        };
        assert_eq!(
            err(&good, &duration_input(-1)),
            "duration input [duration] must be non-negative"
        );
        assert_eq!(
            err(&good, &Inputs::default()),
            "duration input [duration] is missing"
        );
        let two = TypedInterface {
            inputs: Some(vars(&[
                ("a", SimpleType::Duration),
                ("b", SimpleType::Duration),
            ])),
            outputs: None,
        };
        assert!(err(&two, &duration_input(1)).contains("exactly one duration input"));
        let with_output = TypedInterface {
            outputs: Some(vars(&[("o0", SimpleType::Integer)])),
            ..good.clone()
        };
        assert!(err(&with_output, &duration_input(1)).contains("does not support outputs"));
        let seconds = TypedInterface {
            inputs: Some(vars(&[("duration", SimpleType::Integer)])),
            outputs: None,
        };
        assert_eq!(
            err(&seconds, &duration_input(1)),
            "input [duration] must be typed as duration"
        );
    }
}
