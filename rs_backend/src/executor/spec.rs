//! What the backend needs from a task's spec to run it, checked once at submission.

use std::time::Duration;

use flyteidl2::flyteidl::core::{
    resources::{ResourceEntry, ResourceName},
    reuse_policy,
    task_template::Target,
    Container, K8sPod, KeyValuePair, Resources, TaskTemplate,
};
use flyteidl2::flyteidl::task::TaskSpec;
use flyteidl2::flyteidl::workflow::TaskAction;
use flyteidl2::google::protobuf::{value::Kind, Duration as PbDuration, Struct, Value};
use prost::Message;

use crate::clock::positive_duration;
use crate::contract::{RAW_CONTAINER_FLAG, RAW_CONTAINER_TASK_TYPE, RUNTIME_PROGRAM};
use crate::policy::TaskPolicy;
use crate::quantity::parse_memory;

#[derive(Clone, Debug, PartialEq)]
pub struct ExecSpec {
    /// `container.image`: which environment runs the task.
    pub image: String,
    /// `container.args`, placeholders not yet substituted; `args[0]` is the program.
    pub args: Vec<String>,
    /// `container.env`.
    pub env: Vec<(String, String)>,
    /// Bytes (`container.resources.limits[MEMORY]`).
    pub memory_limit: Option<u64>,
    /// Retries, backoff and time limits (`metadata`).
    pub policy: TaskPolicy,
    /// `reuse_policy`: the task runs in a pool of warm workers (see the `pool` module).
    pub reuse: Option<Reuse>,
}

/// A task environment's pool of reusable workers, from `TaskTemplate.reuse_policy`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reuse {
    /// Tasks with the same name and version (in one project and domain) share the pool.
    pub name: String,
    pub version: String,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Attempts one worker runs at once.
    pub concurrency: u32,
    /// The whole pool stops after this long without work (None: never).
    pub idle_ttl: Option<Duration>,
    /// One idle worker above `min_replicas` stops after this long (None: never).
    pub scaledown_ttl: Option<Duration>,
    /// Each run gets its own pool.
    pub per_run: bool,
}

/// The most workers one pool may have and attempts one worker may run: far beyond what a
/// machine runs, so a typo (`replicas=10**9`) is refused instead of tried.
const MAX_REPLICAS: i32 = 1024;
const MAX_CONCURRENCY: i32 = 10_000;

impl Reuse {
    fn from_template(template: &TaskTemplate, env_name: &str) -> Result<Option<Self>, String> {
        let Some(policy) = &template.reuse_policy else {
            return Ok(None);
        };
        let at = "task_template.reuse_policy";
        if !(1..=MAX_REPLICAS).contains(&policy.max_replicas) {
            return Err(format!(
                "{at}.max_replicas must be between 1 and {MAX_REPLICAS}, got {}",
                policy.max_replicas
            ));
        }
        if policy.min_replicas < 0 || policy.min_replicas > policy.max_replicas {
            return Err(format!(
                "{at}.min_replicas must be between 0 and max_replicas ({}), got {}",
                policy.max_replicas, policy.min_replicas
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&policy.concurrency) {
            return Err(format!(
                "{at}.concurrency must be between 1 and {MAX_CONCURRENCY}, got {}",
                policy.concurrency
            ));
        }
        let ttl = |d: Option<&PbDuration>, field: &str| match d {
            Some(d) => positive_duration(d).map_err(|e| format!("{at}.{field}: {e}")),
            None => Ok(None),
        };
        // Older writers (the reference SDK before the field had them) name the pool in the
        // "actor" spec they put in `custom`.
        let custom = |key: &str| {
            template
                .custom
                .as_ref()
                .and_then(|c| string(c, key))
                .filter(|v| !v.is_empty())
        };
        let name = Some(policy.name.clone())
            .filter(|n| !n.is_empty())
            .or_else(|| custom("name"))
            .unwrap_or_else(|| env_name.to_string());
        let version = Some(policy.version.clone())
            .filter(|v| !v.is_empty())
            .or_else(|| custom("version"))
            .unwrap_or_default();
        Ok(Some(Self {
            name,
            version,
            min_replicas: policy.min_replicas as u32,
            max_replicas: policy.max_replicas as u32,
            concurrency: policy.concurrency as u32,
            idle_ttl: ttl(policy.idle_ttl.as_ref(), "idle_ttl")?,
            scaledown_ttl: ttl(policy.scaledown_ttl.as_ref(), "scaledown_ttl")?,
            per_run: policy.scope == reuse_policy::Scope::Run as i32,
        }))
    }
}

impl ExecSpec {
    /// Extracts and validates a TaskAction's spec; errors name the field from the TaskAction.
    pub fn from_task(task: &TaskAction) -> Result<Self, String> {
        let spec = task.spec.as_ref().ok_or("spec is required")?;
        Self::from_task_spec(spec).map_err(|e| format!("spec.{e}"))
    }

    /// Extracts and validates; errors name the field relative to the TaskSpec.
    pub fn from_task_spec(spec: &TaskSpec) -> Result<Self, String> {
        let template = spec
            .task_template
            .as_ref()
            .ok_or("task_template is required")?;
        let from_pod;
        let container = match &template.target {
            Some(Target::Container(container)) => container,
            Some(Target::K8sPod(pod)) => {
                from_pod = pod_container(template, pod)?;
                &from_pod
            }
            Some(_) => {
                return Err(
                    "task_template must have a container or k8s_pod target; sql tasks \
                     are not supported by the embedded backend"
                        .into(),
                )
            }
            None => return Err("task_template.container is required".into()),
        };
        if container
            .args
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            return Err(
                "task_template.container.args must start with the program to run (args[0])".into(),
            );
        }
        for (i, arg) in container.args.iter().enumerate() {
            if arg.contains('\0') {
                return Err(format!(
                    "task_template.container.args[{i}] contains a NUL byte"
                ));
            }
        }
        let mut env = Vec::with_capacity(container.env.len());
        for (i, pair) in container.env.iter().enumerate() {
            if pair.key.is_empty() || pair.key.contains(['=', '\0']) {
                return Err(format!(
                    "task_template.container.env[{i}] has an invalid name {:?}",
                    pair.key
                ));
            }
            if pair.value.contains('\0') {
                return Err(format!(
                    "task_template.container.env[{i}] ({}) contains a NUL byte",
                    pair.key
                ));
            }
            env.push((pair.key.clone(), pair.value.clone()));
        }
        let mut memory_limit = None;
        if let Some(resources) = &container.resources {
            for (i, entry) in resources.limits.iter().enumerate() {
                if entry.name == ResourceName::Memory as i32 {
                    let bytes = parse_memory(&entry.value).map_err(|e| {
                        format!("task_template.container.resources.limits[{i}]: {e}")
                    })?;
                    if bytes == 0 {
                        return Err(format!(
                            "task_template.container.resources.limits[{i}]: a memory \
                             limit of 0 would kill every attempt"
                        ));
                    }
                    memory_limit = Some(bytes);
                }
            }
        }
        let policy = TaskPolicy::from_metadata(template.metadata.as_ref())
            .map_err(|e| format!("task_template.{e}"))?;
        let env_name = spec
            .environment
            .as_ref()
            .map(|e| e.name.as_str())
            .unwrap_or_default();
        let reuse = Reuse::from_template(template, env_name)?;
        if template.r#type == RAW_CONTAINER_TASK_TYPE {
            return Ok(Self {
                // The backend's own runtime runs the image (see `raw_container_args`).
                image: String::new(),
                args: raw_container_args(template),
                env,
                memory_limit,
                policy,
                // It runs another program's image: nothing to keep warm.
                reuse: None,
            });
        }
        Ok(Self {
            image: container.image.clone(),
            args: container.args.clone(),
            env,
            memory_limit,
            policy,
            reuse,
        })
    }
}

/// How the backend runs a raw container: its runtime gets the whole template (image,
/// arguments, data contract and interface), stages the inputs, runs the image with a
/// container runtime of this machine and collects the outputs, as a cluster's data sidecar
/// would around the pod.
fn raw_container_args(template: &TaskTemplate) -> Vec<String> {
    use base64::Engine as _;

    let encoded = base64::engine::general_purpose::STANDARD.encode(template.encode_to_vec());
    [
        RUNTIME_PROGRAM,
        RAW_CONTAINER_FLAG,
        "--inputs",
        "{{.input}}",
        "--outputs-path",
        "{{.outputPrefix}}",
        "--raw-data-path",
        "{{.rawOutputDataPrefix}}",
        "--template",
        &encoded,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The config key naming a pod's primary container (when `K8sPod` does not name it).
const PRIMARY_CONTAINER_CONFIG: &str = "primary_container_name";

/// The primary container of a task's pod (the one that runs the task), as a `Container`:
/// its image, arguments, environment and resource limits. The rest of the pod (sidecars,
/// node selection, volumes) is a cluster's to apply; this backend runs processes.
fn pod_container(template: &TaskTemplate, pod: &K8sPod) -> Result<Container, String> {
    let name = if !pod.primary_container_name.is_empty() {
        pod.primary_container_name.clone()
    } else {
        template
            .config
            .get(PRIMARY_CONTAINER_CONFIG)
            .cloned()
            .unwrap_or_else(|| "primary".to_string())
    };
    let at = "task_template.k8s_pod.pod_spec";
    let spec = pod.pod_spec.as_ref().ok_or(format!("{at} is required"))?;
    let containers = list(spec, "containers").ok_or(format!("{at}.containers is required"))?;
    let primary = containers
        .iter()
        .filter_map(as_struct)
        .find(|c| string(c, "name").as_deref() == Some(name.as_str()))
        .ok_or(format!(
            "{at} has no container named {name:?} (its primary container)"
        ))?;
    let strings = |field: &str| -> Result<Vec<String>, String> {
        list(primary, field)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .map(|(i, v)| match &v.kind {
                Some(Kind::StringValue(s)) => Ok(s.clone()),
                _ => Err(format!(
                    "{at}.containers[{name}].{field}[{i}] is not a string"
                )),
            })
            .collect()
    };
    let mut args = strings("command")?;
    args.extend(strings("args")?);
    let mut env = Vec::new();
    for (i, entry) in list(primary, "env").unwrap_or(&[]).iter().enumerate() {
        let entry =
            as_struct(entry).ok_or(format!("{at}.containers[{name}].env[{i}] is not an object"))?;
        // Variables from the cluster (valueFrom: secrets, field refs) are not this backend's to fill.
        if let (Some(key), Some(value)) = (string(entry, "name"), string(entry, "value")) {
            env.push(KeyValuePair { key, value });
        }
    }
    let mut limits = Vec::new();
    if let Some(resources) = field(primary, "resources").and_then(as_struct) {
        if let Some(memory) = field(resources, "limits")
            .and_then(as_struct)
            .and_then(|l| string(l, "memory"))
        {
            limits.push(ResourceEntry {
                name: ResourceName::Memory as i32,
                value: memory,
            });
        }
    }
    Ok(Container {
        image: string(primary, "image").unwrap_or_default(),
        args,
        env,
        resources: Some(Resources {
            limits,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn field<'a>(s: &'a Struct, name: &str) -> Option<&'a Value> {
    s.fields.get(name)
}

fn as_struct(v: &Value) -> Option<&Struct> {
    match &v.kind {
        Some(Kind::StructValue(s)) => Some(s),
        _ => None,
    }
}

fn list<'a>(s: &'a Struct, name: &str) -> Option<&'a [Value]> {
    match &field(s, name)?.kind {
        Some(Kind::ListValue(l)) => Some(&l.values),
        _ => None,
    }
}

fn string(s: &Struct, name: &str) -> Option<String> {
    match &field(s, name)?.kind {
        Some(Kind::StringValue(v)) => Some(v.clone()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flyteidl2::flyteidl::core::{
        resources::ResourceEntry, Container, KeyValuePair, Resources, RetryStrategy, TaskMetadata,
        TaskTemplate,
    };
    use flyteidl2::google::protobuf::Duration as PbDuration;

    pub fn task_with(container: Container, metadata: Option<TaskMetadata>) -> TaskAction {
        TaskAction {
            spec: Some(TaskSpec {
                task_template: Some(TaskTemplate {
                    target: Some(Target::Container(container)),
                    metadata,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_reuse(policy: flyteidl2::flyteidl::core::ReusePolicy) -> Result<ExecSpec, String> {
        let mut task = task_with(
            Container {
                args: vec!["flyte-action".into()],
                ..Default::default()
            },
            None,
        );
        let spec = task.spec.as_mut().unwrap();
        spec.environment = Some(flyteidl2::flyteidl::task::Environment {
            name: "env".into(),
            ..Default::default()
        });
        spec.task_template.as_mut().unwrap().reuse_policy = Some(policy);
        ExecSpec::from_task(&task)
    }

    #[test]
    fn reads_the_reuse_policy() {
        use flyteidl2::flyteidl::core::ReusePolicy;
        let policy = ReusePolicy {
            min_replicas: 1,
            max_replicas: 3,
            concurrency: 8,
            idle_ttl: Some(PbDuration {
                seconds: 30,
                nanos: 0,
            }),
            scope: reuse_policy::Scope::Run as i32,
            version: "v1".into(),
            ..Default::default()
        };
        let reuse = with_reuse(policy.clone()).unwrap().reuse.unwrap();
        assert_eq!(
            reuse,
            Reuse {
                name: "env".into(),
                version: "v1".into(),
                min_replicas: 1,
                max_replicas: 3,
                concurrency: 8,
                idle_ttl: Some(Duration::from_secs(30)),
                scaledown_ttl: None,
                per_run: true,
            }
        );
        let bad = [
            ReusePolicy {
                max_replicas: 0,
                ..policy.clone()
            },
            ReusePolicy {
                min_replicas: 4,
                ..policy.clone()
            },
            ReusePolicy {
                concurrency: 0,
                ..policy.clone()
            },
            ReusePolicy {
                idle_ttl: Some(PbDuration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..policy
            },
        ];
        for policy in bad {
            let err = with_reuse(policy).unwrap_err();
            assert!(err.contains("reuse_policy"), "{err}");
        }
    }

    #[test]
    fn extracts_limits() {
        let container = Container {
            args: vec!["a".into(), "{{.input}}".into()],
            env: vec![KeyValuePair {
                key: "K".into(),
                value: "V".into(),
            }],
            resources: Some(Resources {
                requests: vec![],
                limits: vec![ResourceEntry {
                    name: ResourceName::Memory as i32,
                    value: "250Mi".into(),
                }],
            }),
            ..Default::default()
        };
        let metadata = TaskMetadata {
            timeout: Some(PbDuration {
                seconds: 3,
                nanos: 0,
            }),
            retries: Some(RetryStrategy {
                retries: 2,
                backoff: None,
            }),
            ..Default::default()
        };
        let spec = ExecSpec::from_task(&task_with(container, Some(metadata))).unwrap();
        assert_eq!(spec.args, vec!["a", "{{.input}}"]);
        assert_eq!(spec.env, vec![("K".to_string(), "V".to_string())]);
        assert_eq!(spec.memory_limit, Some(250 * 1024 * 1024));
        assert_eq!(
            spec.policy.max_runtime,
            Some(std::time::Duration::from_secs(3))
        );
        assert_eq!(spec.policy.retries, 2);
    }

    #[test]
    fn rejects_malformed_specs() {
        assert!(ExecSpec::from_task(&TaskAction::default())
            .unwrap_err()
            .contains("spec is required"));
        let mut no_target = task_with(Container::default(), None);
        if let Some(t) = no_target
            .spec
            .as_mut()
            .and_then(|s| s.task_template.as_mut())
        {
            t.target = None;
        }
        assert!(ExecSpec::from_task(&no_target)
            .unwrap_err()
            .contains("container is required"));

        let bad_memory = Container {
            args: vec!["p".into()],
            resources: Some(Resources {
                requests: vec![],
                limits: vec![ResourceEntry {
                    name: ResourceName::Memory as i32,
                    value: "lots".into(),
                }],
            }),
            ..Default::default()
        };
        assert!(ExecSpec::from_task(&task_with(bad_memory, None))
            .unwrap_err()
            .contains("limits[0]"));

        let bad_timeout = TaskMetadata {
            timeout: Some(PbDuration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        };
        let program = Container {
            args: vec!["p".into()],
            ..Default::default()
        };
        assert!(ExecSpec::from_task(&task_with(program, Some(bad_timeout)))
            .unwrap_err()
            .contains("timeout"));

        let no_program = Container {
            args: vec![],
            ..Default::default()
        };
        assert!(ExecSpec::from_task(&task_with(no_program, None))
            .unwrap_err()
            .contains("args[0]"));

        let bad_env = Container {
            args: vec!["p".into()],
            env: vec![KeyValuePair {
                key: "A=B".into(),
                value: String::new(),
            }],
            ..Default::default()
        };
        assert!(ExecSpec::from_task(&task_with(bad_env, None))
            .unwrap_err()
            .contains("env[0]"));
    }
}
