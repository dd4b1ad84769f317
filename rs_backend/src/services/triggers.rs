//! flyteidl2.trigger.TriggerService: triggers of deployed tasks, deployed with the task
//! (DeployTask) or on their own, activated, listed and deleted. The scheduler fires them.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use flyteidl2::flyteidl::common::{TriggerIdentifier, TriggerName};
use flyteidl2::flyteidl::task::{
    task_trigger_spec, TaskIdentifier, TaskTrigger, TriggerAutomationSpec,
    TriggerAutomationSpecType,
};
use flyteidl2::flyteidl::trigger::trigger_service_server::TriggerService;
use flyteidl2::flyteidl::trigger::{
    list_triggers_request, trigger_spec, DeleteTriggersRequest, DeleteTriggersResponse,
    DeployTriggerRequest, DeployTriggerResponse, GetTriggerDetailsRequest,
    GetTriggerDetailsResponse, GetTriggerRevisionDetailsRequest, GetTriggerRevisionDetailsResponse,
    GetTriggerRevisionHistoryRequest, GetTriggerRevisionHistoryResponse, ListTriggersRequest,
    ListTriggersResponse, Trigger, TriggerDetails, TriggerSpec, TriggerStatus,
    UpdateTriggersRequest, UpdateTriggersResponse,
};

use crate::clock::{now_ms, timestamp};
use crate::engine::{internal, Engine};
use crate::names::check_segment;
use crate::schedule;
use crate::services::{list_page, next_token, projects, tasks};
use crate::store::{TriggerKey, TriggerQuery, TriggerRow};

/// Page size when a listing does not say.
const TRIGGER_PAGE: u32 = 50;

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

fn key_of(name: Option<&TriggerName>, field: &str) -> Result<TriggerKey, Status> {
    let name = name.ok_or_else(|| invalid(format!("{field} is required")))?;
    for (part, value) in [
        ("project", &name.project),
        ("domain", &name.domain),
        ("task_name", &name.task_name),
        ("name", &name.name),
    ] {
        check_segment(&format!("{field}.{part}"), value, true).map_err(invalid)?;
    }
    Ok(TriggerKey {
        project: name.project.clone(),
        domain: name.domain.clone(),
        task_name: name.task_name.clone(),
        name: name.name.clone(),
    })
}

/// Checks an automation: a schedule must parse; a trigger without one is only run by hand.
fn check_automation(spec: &TriggerAutomationSpec, trigger: &str) -> Result<(), Status> {
    match TriggerAutomationSpecType::try_from(spec.r#type) {
        Ok(TriggerAutomationSpecType::TypeSchedule) => schedule::from_spec(spec)
            .map(|_| ())
            .map_err(|e| invalid(format!("trigger {trigger:?}: {e}"))),
        Ok(TriggerAutomationSpecType::TypeNone)
        | Ok(TriggerAutomationSpecType::TypeUnspecified) => Ok(()),
        _ => Err(Status::unimplemented(format!(
            "trigger {trigger:?}: only scheduled triggers (cron or fixed rate) are supported by \
             the embedded backend, not artifact triggers"
        ))),
    }
}

fn name_of(key: &TriggerKey) -> TriggerName {
    TriggerName {
        org: String::new(),
        project: key.project.clone(),
        domain: key.domain.clone(),
        name: key.name.clone(),
        task_name: key.task_name.clone(),
    }
}

fn status(row: &TriggerRow) -> TriggerStatus {
    TriggerStatus {
        deployed_at: Some(timestamp(row.deployed_ms)),
        updated_at: Some(timestamp(row.updated_ms)),
        triggered_at: row.triggered_ms.map(timestamp),
        deleted_at: None,
    }
}

fn decode(row: &TriggerRow) -> Result<(TriggerSpec, TriggerAutomationSpec), Status> {
    let spec = TriggerSpec::decode(row.spec.as_slice())
        .map_err(|e| Status::internal(format!("a stored trigger spec does not decode: {e}")))?;
    let automation = TriggerAutomationSpec::decode(row.automation.as_slice())
        .map_err(|e| Status::internal(format!("a stored automation does not decode: {e}")))?;
    Ok((spec, automation))
}

fn details(row: &TriggerRow) -> Result<TriggerDetails, Status> {
    let (mut spec, automation) = decode(row)?;
    spec.active = row.active;
    Ok(TriggerDetails {
        id: Some(TriggerIdentifier {
            name: Some(name_of(&row.key)),
            revision: row.revision as u64,
        }),
        metadata: None,
        description: Some(spec.description.clone()),
        spec: Some(spec),
        status: Some(status(row)),
        automation_spec: Some(automation),
    })
}

fn summary(row: &TriggerRow) -> Result<Trigger, Status> {
    let (_, automation) = decode(row)?;
    Ok(Trigger {
        id: Some(TriggerIdentifier {
            name: Some(name_of(&row.key)),
            revision: row.revision as u64,
        }),
        metadata: None,
        status: Some(status(row)),
        active: row.active,
        automation_spec: Some(automation),
    })
}

fn store_trigger(
    engine: &Engine,
    key: &TriggerKey,
    spec: &TriggerSpec,
    automation: &TriggerAutomationSpec,
) -> Result<TriggerRow, Status> {
    engine
        .store
        .trigger_deploy(
            key,
            &spec.encode_to_vec(),
            &automation.encode_to_vec(),
            spec.active,
            now_ms(),
        )
        .map_err(|e| internal("deploy trigger", e))
}

/// Triggers deployed with a task (DeployTask), checked and ready to store.
pub struct TaskTriggers {
    task: TaskIdentifier,
    triggers: Vec<(TriggerKey, TriggerSpec, TriggerAutomationSpec)>,
}

/// Checks the triggers of a DeployTask request, before anything is stored.
pub fn check_task_triggers(
    task: &TaskIdentifier,
    triggers: &[TaskTrigger],
) -> Result<TaskTriggers, Status> {
    let mut checked = Vec::with_capacity(triggers.len());
    for trigger in triggers {
        check_segment("triggers[].name", &trigger.name, true).map_err(invalid)?;
        let automation = trigger.automation_spec.clone().unwrap_or_default();
        check_automation(&automation, &trigger.name)?;
        let given = trigger.spec.clone().unwrap_or_default();
        if let Some(run_spec) = &given.run_spec {
            crate::validate::check_notifications(run_spec, "triggers[].spec.run_spec")?;
        }
        let spec = TriggerSpec {
            run_spec: given.run_spec,
            active: given.active,
            task_version: task.version.clone(),
            description: given.description,
            input_wrapper: given.input_wrapper.map(|w| match w {
                task_trigger_spec::InputWrapper::Inputs(inputs) => {
                    trigger_spec::InputWrapper::Inputs(inputs)
                }
                task_trigger_spec::InputWrapper::OffloadedInputData(offloaded) => {
                    trigger_spec::InputWrapper::OffloadedInputData(offloaded)
                }
            }),
        };
        let key = TriggerKey {
            project: task.project.clone(),
            domain: task.domain.clone(),
            task_name: task.name.clone(),
            name: trigger.name.clone(),
        };
        checked.push((key, spec, automation));
    }
    Ok(TaskTriggers {
        task: task.clone(),
        triggers: checked,
    })
}

/// Stores a task's triggers for its name, with the deployed version; as on a cluster, a
/// deploy that names triggers removes the task's others.
pub fn deploy_task_triggers(engine: &Engine, triggers: TaskTriggers) -> Result<(), Status> {
    let TaskTriggers { task, triggers } = triggers;
    for (key, spec, automation) in &triggers {
        store_trigger(engine, key, spec, automation)?;
    }
    if !triggers.is_empty() {
        let query = TriggerQuery {
            project: Some(task.project.clone()),
            domain: Some(task.domain.clone()),
            task_name: Some(task.name.clone()),
        };
        let existing = engine
            .store
            .trigger_list(&query, 0, u32::MAX)
            .map_err(|e| internal("list triggers", e))?;
        let kept: Vec<&TriggerKey> = triggers.iter().map(|(k, _, _)| k).collect();
        for row in existing.iter().filter(|r| !kept.contains(&&r.key)) {
            engine
                .store
                .trigger_delete(&row.key, now_ms())
                .map_err(|e| internal("delete trigger", e))?;
        }
    }
    Ok(())
}

pub struct TriggersApi {
    engine: Arc<Engine>,
}

impl TriggersApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The keys of `names`, all of which must exist: checked before anything changes.
    fn existing_keys(&self, names: &[TriggerName]) -> Result<Vec<TriggerKey>, Status> {
        let keys = names
            .iter()
            .map(|n| key_of(Some(n), "names[]"))
            .collect::<Result<Vec<_>, _>>()?;
        for key in &keys {
            self.existing(key)?;
        }
        Ok(keys)
    }

    fn existing(&self, key: &TriggerKey) -> Result<TriggerRow, Status> {
        self.engine
            .store
            .trigger_get(key)
            .map_err(|e| internal("read trigger", e))?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "trigger {:?} of task {} not found in {}/{}",
                    key.name, key.task_name, key.project, key.domain
                ))
            })
    }
}

#[tonic::async_trait]
impl TriggerService for TriggersApi {
    async fn deploy_trigger(
        &self,
        request: Request<DeployTriggerRequest>,
    ) -> Result<Response<DeployTriggerResponse>, Status> {
        let request = request.into_inner();
        let key = key_of(request.name.as_ref(), "name")?;
        let org = request
            .name
            .as_ref()
            .map(|n| n.org.clone())
            .unwrap_or_default();
        projects::require(&self.engine, &org, &key.project)?;
        let spec = request.spec.ok_or_else(|| invalid("spec is required"))?;
        let automation = request.automation_spec.unwrap_or_default();
        check_automation(&automation, &key.name)?;
        if let Some(run_spec) = &spec.run_spec {
            crate::validate::check_notifications(run_spec, "spec.run_spec")?;
        }
        // The trigger runs a deployed version of its task.
        tasks::deployed_spec(
            &self.engine,
            &TaskIdentifier {
                org: String::new(),
                project: key.project.clone(),
                domain: key.domain.clone(),
                name: key.task_name.clone(),
                version: spec.task_version.clone(),
            },
        )?;
        if request.revision > 0 {
            if let Some(current) = self
                .engine
                .store
                .trigger_get(&key)
                .map_err(|e| internal("read trigger", e))?
            {
                if current.revision as u64 != request.revision {
                    return Err(Status::failed_precondition(format!(
                        "trigger {:?} is at revision {}, not {}",
                        key.name, current.revision, request.revision
                    )));
                }
            }
        }
        let row = store_trigger(&self.engine, &key, &spec, &automation)?;
        Ok(Response::new(DeployTriggerResponse {
            trigger: Some(details(&row)?),
        }))
    }

    async fn get_trigger_details(
        &self,
        request: Request<GetTriggerDetailsRequest>,
    ) -> Result<Response<GetTriggerDetailsResponse>, Status> {
        let key = key_of(request.into_inner().name.as_ref(), "name")?;
        Ok(Response::new(GetTriggerDetailsResponse {
            trigger: Some(details(&self.existing(&key)?)?),
        }))
    }

    async fn get_trigger_revision_details(
        &self,
        request: Request<GetTriggerRevisionDetailsRequest>,
    ) -> Result<Response<GetTriggerRevisionDetailsResponse>, Status> {
        let id = request
            .into_inner()
            .id
            .ok_or_else(|| invalid("id is required"))?;
        let key = key_of(id.name.as_ref(), "id.name")?;
        let row = self.existing(&key)?;
        if row.revision as u64 != id.revision {
            return Err(Status::not_found(format!(
                "trigger {:?}: the embedded backend keeps only the current revision ({}), not {}",
                key.name, row.revision, id.revision
            )));
        }
        Ok(Response::new(GetTriggerRevisionDetailsResponse {
            trigger: Some(details(&row)?),
        }))
    }

    async fn list_triggers(
        &self,
        request: Request<ListTriggersRequest>,
    ) -> Result<Response<ListTriggersResponse>, Status> {
        let request = request.into_inner();
        let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
        let query = match &request.scope_by {
            None | Some(list_triggers_request::ScopeBy::Org(_)) => TriggerQuery::default(),
            Some(list_triggers_request::ScopeBy::ProjectId(p)) => TriggerQuery {
                project: non_empty(&p.name),
                domain: non_empty(&p.domain),
                task_name: None,
            },
            Some(list_triggers_request::ScopeBy::TaskId(t)) => TriggerQuery {
                project: non_empty(&t.project),
                domain: non_empty(&t.domain),
                task_name: non_empty(&t.name),
            },
            Some(list_triggers_request::ScopeBy::TaskName(t)) => TriggerQuery {
                project: non_empty(&t.project),
                domain: non_empty(&t.domain),
                task_name: non_empty(&t.name),
            },
        };
        let (offset, limit) = list_page(request.request.as_ref(), TRIGGER_PAGE)?;
        let rows = self
            .engine
            .store
            .trigger_list(&query, offset, limit)
            .map_err(|e| internal("list triggers", e))?;
        Ok(Response::new(ListTriggersResponse {
            token: next_token(offset, limit, rows.len()),
            triggers: rows.iter().map(summary).collect::<Result<_, _>>()?,
        }))
    }

    async fn get_trigger_revision_history(
        &self,
        _request: Request<GetTriggerRevisionHistoryRequest>,
    ) -> Result<Response<GetTriggerRevisionHistoryResponse>, Status> {
        Err(Status::unimplemented(
            "the embedded backend keeps the current revision of a trigger, not its history",
        ))
    }

    async fn update_triggers(
        &self,
        request: Request<UpdateTriggersRequest>,
    ) -> Result<Response<UpdateTriggersResponse>, Status> {
        let request = request.into_inner();
        for key in &self.existing_keys(&request.names)? {
            self.engine
                .store
                .trigger_set_active(key, request.active, now_ms())
                .map_err(|e| internal("update trigger", e))?;
        }
        Ok(Response::new(UpdateTriggersResponse {}))
    }

    async fn delete_triggers(
        &self,
        request: Request<DeleteTriggersRequest>,
    ) -> Result<Response<DeleteTriggersResponse>, Status> {
        for key in &self.existing_keys(&request.into_inner().names)? {
            self.engine
                .store
                .trigger_delete(key, now_ms())
                .map_err(|e| internal("delete trigger", e))?;
        }
        Ok(Response::new(DeleteTriggersResponse {}))
    }
}
