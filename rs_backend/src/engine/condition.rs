//! Condition actions: a run waits, without a process, for a value signalled from outside
//! (`flyte.new_condition`). A condition is stored PAUSED; Signal ends it SUCCEEDED with the
//! value, its timeout TIMED_OUT, an abort (its own or its parent's end) ABORTED.

use std::sync::Arc;
use std::time::Duration;

use flyteidl2::flyteidl::core::{
    execution_error::ErrorKind, literal, literal_type, primitive, scalar, ExecutionError, Literal,
    LiteralType, Primitive, Scalar, SimpleType,
};
use flyteidl2::flyteidl::workflow::ConditionAction;
use prost::Message;
use tonic::Status;

use super::{internal, Engine};
use crate::clock::now_ms;
use crate::names::RunKey;
use crate::phase;
use crate::signing::{Grant, UrlSigner};
use crate::store::{ActionKind, ActionRecord, ConditionEnd};

/// The error code of a condition nobody signalled in time (what a cluster reports).
pub const CONDITION_TIMED_OUT: &str = "ConditionTimedOut";

/// Where a condition's callback URI points: `POST <base>/conditions/<path>?signature=...`.
pub const CALLBACK_PREFIX: &str = "/conditions/";

/// The payload types a condition can declare.
pub fn simple_type(ty: Option<&LiteralType>) -> Option<SimpleType> {
    match ty?.r#type.as_ref()? {
        literal_type::Type::Simple(simple) => match SimpleType::try_from(*simple).ok()? {
            t @ (SimpleType::Boolean
            | SimpleType::Integer
            | SimpleType::Float
            | SimpleType::String) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// A primitive value as the literal a condition is signalled with.
pub fn primitive_literal(value: primitive::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive { value: Some(value) })),
        }))),
        ..Default::default()
    }
}

/// The primitive a literal holds, if it is one.
fn primitive_of(value: &Literal) -> Option<&primitive::Value> {
    match value.value.as_ref()? {
        literal::Value::Scalar(s) => match s.value.as_ref()? {
            scalar::Value::Primitive(p) => p.value.as_ref(),
            _ => None,
        },
        _ => None,
    }
}

/// Checks a signalled value against the condition's declared type.
pub fn check_value(expected: SimpleType, value: &Literal) -> Result<(), String> {
    let Some(primitive) = primitive_of(value) else {
        return Err("the value must be a primitive literal (a bool, int, float or string)".into());
    };
    let matches = matches!(
        (expected, primitive),
        (SimpleType::Boolean, primitive::Value::Boolean(_))
            | (SimpleType::Integer, primitive::Value::Integer(_))
            | (SimpleType::Float, primitive::Value::FloatValue(_))
            | (SimpleType::String, primitive::Value::StringValue(_))
    );
    if matches {
        Ok(())
    } else {
        Err(format!(
            "the condition expects a {} value, got {}",
            expected.as_str_name(),
            describe(primitive)
        ))
    }
}

fn describe(value: &primitive::Value) -> String {
    match value {
        primitive::Value::Boolean(b) => format!("the BOOLEAN {b}"),
        primitive::Value::Integer(i) => format!("the INTEGER {i}"),
        primitive::Value::FloatValue(f) => format!("the FLOAT {f}"),
        primitive::Value::StringValue(s) => format!("the STRING {s:?}"),
        primitive::Value::Datetime(_) => "a DATETIME".into(),
        primitive::Value::Duration(_) => "a DURATION".into(),
    }
}

pub fn condition_action(record: &ActionRecord) -> Option<ConditionAction> {
    match record.kind {
        ActionKind::Condition => ConditionAction::decode(record.spec.as_slice()).ok(),
        _ => None,
    }
}

/// How long a condition waits before timing out (None: until signalled or aborted).
pub fn timeout_of(condition: &ConditionAction) -> Option<Duration> {
    let t = condition.timeout.as_ref()?;
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    // Zero or negative timeouts are ignored, as flyteidl2 documents.
    (nanos > 0).then(|| Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

/// The path a condition's callback URI signs: `<org>/<project>/<domain>/<run>/<action>`
/// (an empty org is spelled `-`).
fn callback_path(run: &RunKey, action: &str) -> String {
    let org = if run.org.is_empty() { "-" } else { &run.org };
    [org, &run.project, &run.domain, &run.name, action]
        .iter()
        .map(|s| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The grant a callback URI's signature covers. It has no expiry: once the condition ends,
/// the URI can only repeat the value it was given.
fn callback_grant(path: &str) -> Grant<'_> {
    Grant {
        method: "POST",
        path,
        expires: 0,
        content_md5: "",
    }
}

/// Whether `signature` is this backend's for the callback path.
pub fn callback_authorized(signer: &UrlSigner, path: &str, signature: &str) -> bool {
    signer.verify(&callback_grant(path), signature)
}

/// The run and action a (verified) callback path names.
pub fn parse_callback_path(path: &str) -> Option<(RunKey, String)> {
    let parts: Vec<String> = path
        .split('/')
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8()
                .map(|s| s.into_owned())
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let [org, project, domain, run, action] = parts.as_slice() else {
        return None;
    };
    let org = if org == "-" {
        String::new()
    } else {
        org.clone()
    };
    Some((
        RunKey {
            org,
            project: project.clone(),
            domain: domain.clone(),
            name: run.clone(),
        },
        action.clone(),
    ))
}

impl Engine {
    /// The URI a condition's webhook receiver POSTs its value to (signed, so the receiver
    /// needs no credentials; it can only signal this one condition).
    pub fn callback_uri(&self, run: &RunKey, action: &str) -> Result<String, Status> {
        let signer = UrlSigner::load_or_create(&self.layout.signing_key_path())
            .map_err(|e| Status::internal(format!("load the URL signing key: {e}")))?;
        let path = callback_path(run, action);
        let signature = signer.sign(&callback_grant(&path));
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(format!(
            "{scheme}://{}{CALLBACK_PREFIX}{path}?signature={signature}",
            self.endpoint
        ))
    }

    /// What follows the creation of a condition: its timeout is armed and its webhook fired.
    pub(super) fn condition_created(self: &Arc<Self>, record: &ActionRecord) {
        let Some(condition) = condition_action(record) else {
            return;
        };
        self.arm_condition_timeout(record, &condition);
        if let Some(hook) = condition.webhook.filter(|h| !h.url.is_empty()) {
            let callback = match self.callback_uri(&record.run, &record.name) {
                Ok(uri) => uri,
                Err(err) => {
                    tracing::warn!(%err, action = %record.name, "condition webhook not sent");
                    return;
                }
            };
            let action = record.name.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(err) = crate::notify::condition_webhook(&hook, &callback).await {
                        tracing::warn!(%err, %action, "condition webhook failed");
                    }
                });
            }
        }
    }

    /// Ends the condition TIMED_OUT once its timeout passes (counted from its creation, so a
    /// restarted backend arms what is left of it).
    pub fn arm_condition_timeout(
        self: &Arc<Self>,
        record: &ActionRecord,
        condition: &ConditionAction,
    ) {
        let Some(timeout) = timeout_of(condition) else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let deadline_ms = record
            .created_ms
            .saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        let engine = Arc::downgrade(self);
        let seq = record.seq;
        let name = condition.name.clone();
        handle.spawn(async move {
            let wait = u64::try_from(deadline_ms.saturating_sub(now_ms())).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let error = ExecutionError {
                code: CONDITION_TIMED_OUT.into(),
                message: format!(
                    "condition {name:?} was not signalled within {:.3}s",
                    timeout.as_secs_f64()
                ),
                kind: ErrorKind::User as i32,
                ..Default::default()
            }
            .encode_to_vec();
            match engine
                .store
                .end_condition(seq, ConditionEnd::TimedOut(&error), now_ms())
            {
                Ok(Some((record, true))) => {
                    engine.publish(record);
                }
                Ok(_) => {}
                Err(err) => tracing::error!(%err, "could not time out a condition"),
            }
        });
    }

    /// Resolves a waiting condition with `value`. Signalling an ended condition again with
    /// the value it ended with succeeds and changes nothing.
    pub fn signal(
        &self,
        run: &RunKey,
        name: &str,
        parent: Option<&str>,
        value: &Literal,
    ) -> Result<(), Status> {
        let record = self
            .store
            .action(run, name)
            .map_err(|e| internal("look up action", e))?
            .filter(|r| parent.is_none_or(|p| p.is_empty() || r.parent.as_deref() == Some(p)))
            .ok_or_else(|| {
                Status::not_found(match parent {
                    Some(p) if !p.is_empty() => {
                        format!("action {name:?} under {p:?} does not exist in run {run}")
                    }
                    _ => format!("action {name:?} does not exist in run {run}"),
                })
            })?;
        let Some(condition) = condition_action(&record) else {
            return Err(Status::failed_precondition(format!(
                "action {name:?} is a {}, not a condition: only conditions can be signalled",
                record.kind.as_str()
            )));
        };
        let Some(expected) = simple_type(condition.r#type.as_ref()) else {
            return Err(Status::failed_precondition(format!(
                "condition {:?} declares no payload type it can be signalled with",
                condition.name
            )));
        };
        check_value(expected, value).map_err(|e| {
            Status::invalid_argument(format!("condition {:?}: {e}", condition.name))
        })?;
        let bytes = value.encode_to_vec();
        let (record, changed) = self
            .store
            .end_condition(record.seq, ConditionEnd::Signalled(&bytes), now_ms())
            .map_err(|e| internal("signal condition", e))?
            .ok_or_else(|| {
                Status::not_found(format!("action {name:?} does not exist in run {run}"))
            })?;
        if changed {
            self.publish(record);
            return Ok(());
        }
        let same = phase::is_success(record.phase)
            && record
                .value
                .as_deref()
                .and_then(|b| Literal::decode(b).ok())
                .is_some_and(|v| v == *value);
        if same {
            Ok(())
        } else {
            Err(Status::failed_precondition(format!(
                "condition {:?} already ended ({}); it cannot be signalled again with another value",
                condition.name,
                phase::phase_name(record.phase)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use flyteidl2::google::protobuf::Duration as PbDuration;

    use super::*;

    fn simple(t: SimpleType) -> LiteralType {
        LiteralType {
            r#type: Some(literal_type::Type::Simple(t as i32)),
            ..Default::default()
        }
    }

    #[test]
    fn only_primitive_types_are_condition_types() {
        for t in [
            SimpleType::Boolean,
            SimpleType::Integer,
            SimpleType::Float,
            SimpleType::String,
        ] {
            assert_eq!(simple_type(Some(&simple(t))), Some(t));
        }
        assert_eq!(simple_type(Some(&simple(SimpleType::Datetime))), None);
        assert_eq!(simple_type(None), None);
    }

    #[test]
    fn values_must_have_the_declared_type() {
        let yes = primitive_literal(primitive::Value::Boolean(true));
        let three = primitive_literal(primitive::Value::Integer(3));
        assert!(check_value(SimpleType::Boolean, &yes).is_ok());
        assert!(check_value(SimpleType::Integer, &three).is_ok());
        let wrong = check_value(SimpleType::Boolean, &three).unwrap_err();
        assert_eq!(
            wrong,
            "the condition expects a BOOLEAN value, got the INTEGER 3"
        );
        assert!(check_value(SimpleType::String, &Literal::default())
            .unwrap_err()
            .contains("primitive literal"));
    }

    #[test]
    fn timeouts_are_positive_durations() {
        let with = |seconds, nanos| ConditionAction {
            timeout: Some(PbDuration { seconds, nanos }),
            ..Default::default()
        };
        assert_eq!(
            timeout_of(&with(1, 500_000_000)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(timeout_of(&with(0, 0)), None);
        assert_eq!(timeout_of(&with(-5, 0)), None);
        assert_eq!(timeout_of(&ConditionAction::default()), None);
    }

    #[test]
    fn callback_paths_name_the_action_they_were_made_for() {
        let run = RunKey {
            org: String::new(),
            project: "my project".into(),
            domain: "development".into(),
            name: "r1".into(),
        };
        let path = callback_path(&run, "act/ion");
        assert!(!path.contains(' ') && path.matches('/').count() == 4);
        assert_eq!(
            parse_callback_path(&path),
            Some((run, "act/ion".to_string()))
        );
        assert_eq!(parse_callback_path("a/b"), None);
        let dir = tempfile::tempdir().unwrap();
        let signer = UrlSigner::load_or_create(&dir.path().join("key")).unwrap();
        let signature = signer.sign(&callback_grant(&path));
        assert!(callback_authorized(&signer, &path, &signature));
        assert!(!callback_authorized(&signer, "-/p/d/r2/a", &signature));
    }
}
