//! flyteidl2.task.TaskService: deployed tasks, by (project, domain, name, version).
//!
//! As on a cluster, deploying a version again replaces its spec (a redeploy of the same code
//! is a no-op for callers) and "latest" means the most recently first-deployed version.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use flyteidl2::flyteidl::common::{filter::Function, ListRequest};
use flyteidl2::flyteidl::task::task_service_server::TaskService;
use flyteidl2::flyteidl::task::{
    list_tasks_request, list_versions_response::VersionResponse, DeployTaskRequest,
    DeployTaskResponse, GetTaskDetailsRequest, GetTaskDetailsResponse, ListTasksRequest,
    ListTasksResponse, ListVersionsRequest, ListVersionsResponse, Task, TaskDetails,
    TaskIdentifier, TaskMetadata, TaskSpec,
};

use crate::clock::{now_ms, timestamp};
use crate::engine::{internal, Engine};
use crate::executor::spec::ExecSpec;
use crate::names::check_segment;
use crate::services::{list_page, next_token, projects, triggers};
use crate::store::{TaskQuery, TaskRow};

/// Page size when a listing does not say.
const DEFAULT_PAGE: u32 = 50;

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// A task id with every part present and usable as a name.
pub fn check_task_id(id: Option<&TaskIdentifier>, field: &str) -> Result<TaskIdentifier, Status> {
    let id = id.ok_or_else(|| invalid(format!("{field} is required")))?;
    for (part, value) in [
        ("project", &id.project),
        ("domain", &id.domain),
        ("name", &id.name),
        ("version", &id.version),
    ] {
        check_segment(&format!("{field}.{part}"), value, true).map_err(invalid)?;
    }
    // The API's limits (task.TaskIdentifier): names may be long, the rest are DNS-label sized.
    for (part, value) in [
        ("project", &id.project),
        ("domain", &id.domain),
        ("version", &id.version),
    ] {
        if value.len() > 63 {
            return Err(invalid(format!(
                "{field}.{part} is {} characters long; at most 63 are allowed",
                value.len()
            )));
        }
    }
    Ok(id.clone())
}

/// What a deployed task's id looks like in answers: the cluster leaves the org out.
fn task_id(row: &TaskRow) -> TaskIdentifier {
    TaskIdentifier {
        org: String::new(),
        project: row.project.clone(),
        domain: row.domain.clone(),
        name: row.name.clone(),
        version: row.version.clone(),
    }
}

fn metadata(row: &TaskRow) -> TaskMetadata {
    TaskMetadata {
        short_name: row.short_name.clone(),
        deployed_at: Some(timestamp(row.created_ms)),
        environment_name: row.env_name.clone(),
        ..Default::default()
    }
}

fn decode_spec(row: &TaskRow) -> Result<TaskSpec, Status> {
    TaskSpec::decode(row.spec.as_slice())
        .map_err(|e| Status::internal(format!("a stored task spec does not decode: {e}")))
}

/// The deployed spec of `id`; NOT_FOUND naming the versions that do exist.
pub fn deployed_spec(engine: &Engine, id: &TaskIdentifier) -> Result<TaskSpec, Status> {
    let store = &engine.store;
    let row = store
        .task_get(&id.project, &id.domain, &id.name, &id.version)
        .map_err(|e| internal("read task", e))?;
    match row {
        Some(row) => decode_spec(&row),
        None => {
            let versions = store
                .task_versions(&id.project, &id.domain, &id.name, 0, 10)
                .map_err(|e| internal("list task versions", e))?;
            let known = if versions.is_empty() {
                format!("no version of {} is deployed", id.name)
            } else {
                let names: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
                format!("deployed versions, newest first: {}", names.join(", "))
            };
            Err(Status::not_found(format!(
                "task {} version {} not found in {}/{} ({known})",
                id.name, id.version, id.project, id.domain
            )))
        }
    }
}

/// Narrows `query` by a listing's filters and sort: `name` (equal or contains) and
/// `created_at` order. Anything else is refused rather than silently ignored.
fn apply_list_request(query: &mut TaskQuery, request: Option<&ListRequest>) -> Result<(), Status> {
    let Some(request) = request else {
        return Ok(());
    };
    for filter in &request.filters {
        let value = match filter.values.as_slice() {
            [value] => value.clone(),
            _ => {
                return Err(invalid(format!(
                    "filter on {:?} needs exactly one value",
                    filter.field
                )))
            }
        };
        match (filter.field.as_str(), Function::try_from(filter.function)) {
            ("name", Ok(Function::Equal)) => query.name = Some(value),
            ("name", Ok(Function::Contains)) => query.name_contains = Some(value),
            (field, function) => {
                return Err(invalid(format!(
                    "tasks can be filtered by name (EQUAL or CONTAINS), not by {field:?} with {}",
                    function
                        .map(|f| f.as_str_name())
                        .unwrap_or("an unknown function")
                )))
            }
        }
    }
    // Clients still send the deprecated single sort_by (the reference SDK does).
    #[allow(deprecated)]
    let sort = request.sort_by_fields.first().or(request.sort_by.as_ref());
    if let Some(sort) = sort {
        if !matches!(sort.key.as_str(), "" | "created_at" | "deployed_at") {
            return Err(invalid(format!(
                "tasks can be sorted by created_at, not by {:?}",
                sort.key
            )));
        }
        // Sort.Direction: DESCENDING = 0, ASCENDING = 1.
        query.ascending = sort.direction == 1;
    }
    Ok(())
}

pub struct TasksApi {
    engine: Arc<Engine>,
}

impl TasksApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[tonic::async_trait]
impl TaskService for TasksApi {
    async fn deploy_task(
        &self,
        request: Request<DeployTaskRequest>,
    ) -> Result<Response<DeployTaskResponse>, Status> {
        let request = request.into_inner();
        let id = check_task_id(request.task_id.as_ref(), "task_id")?;
        projects::require(&self.engine, &id.org, &id.project)?;
        let spec = request.spec.ok_or_else(|| invalid("spec is required"))?;
        // A deployed task must be runnable as it is: the same checks as a run's task spec.
        ExecSpec::from_task_spec(&spec).map_err(|e| invalid(format!("spec.{e}")))?;
        let triggers = triggers::check_task_triggers(&id, &request.triggers)?;
        let short_name = if spec.short_name.is_empty() {
            id.name.rsplit('.').next().unwrap_or(&id.name).to_string()
        } else {
            spec.short_name.clone()
        };
        let row = TaskRow {
            project: id.project.clone(),
            domain: id.domain.clone(),
            name: id.name.clone(),
            version: id.version.clone(),
            env_name: spec
                .environment
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_default(),
            short_name,
            spec: spec.encode_to_vec(),
            created_ms: 0,
        };
        self.engine
            .store
            .task_upsert(&row, now_ms())
            .map_err(|e| internal("deploy task", e))?;
        triggers::deploy_task_triggers(&self.engine, triggers)?;
        Ok(Response::new(DeployTaskResponse {}))
    }

    async fn get_task_details(
        &self,
        request: Request<GetTaskDetailsRequest>,
    ) -> Result<Response<GetTaskDetailsResponse>, Status> {
        let id = check_task_id(request.into_inner().task_id.as_ref(), "task_id")?;
        let spec = deployed_spec(&self.engine, &id)?;
        let row = self
            .engine
            .store
            .task_get(&id.project, &id.domain, &id.name, &id.version)
            .map_err(|e| internal("read task", e))?
            .ok_or_else(|| Status::not_found(format!("task {} was just removed", id.name)))?;
        Ok(Response::new(GetTaskDetailsResponse {
            details: Some(TaskDetails {
                task_id: Some(task_id(&row)),
                metadata: Some(metadata(&row)),
                spec: Some(spec),
            }),
        }))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let request = request.into_inner();
        let mut query = TaskQuery::default();
        match &request.scope_by {
            // Tasks are not kept per org (as runs are not): an org sees every project.
            None | Some(list_tasks_request::ScopeBy::Org(_)) => {}
            Some(list_tasks_request::ScopeBy::ProjectId(project)) => {
                query.project = (!project.name.is_empty()).then(|| project.name.clone());
                query.domain = (!project.domain.is_empty()).then(|| project.domain.clone());
            }
        }
        // Known filters (deployed_by, is_entrypoint) select everything here: there is one
        // local user, and nothing marks entrypoints; a cluster ignores is_entrypoint too.
        apply_list_request(&mut query, request.request.as_ref())?;
        let (offset, limit) = list_page(request.request.as_ref(), DEFAULT_PAGE)?;
        let rows = self
            .engine
            .store
            .task_latest(&query, offset, limit)
            .map_err(|e| internal("list tasks", e))?;
        let token = next_token(offset, limit, rows.len());
        let tasks = rows
            .iter()
            .map(|row| Task {
                task_id: Some(task_id(row)),
                metadata: Some(metadata(row)),
                task_summary: None,
            })
            .collect();
        Ok(Response::new(ListTasksResponse {
            tasks,
            token,
            metadata: None,
        }))
    }

    async fn list_versions(
        &self,
        request: Request<ListVersionsRequest>,
    ) -> Result<Response<ListVersionsResponse>, Status> {
        let request = request.into_inner();
        let name = request
            .task_name
            .ok_or_else(|| invalid("task_name is required"))?;
        for (part, value) in [
            ("project", &name.project),
            ("domain", &name.domain),
            ("name", &name.name),
        ] {
            check_segment(&format!("task_name.{part}"), value, true).map_err(invalid)?;
        }
        let (offset, limit) = list_page(request.request.as_ref(), DEFAULT_PAGE)?;
        let rows = self
            .engine
            .store
            .task_versions(&name.project, &name.domain, &name.name, offset, limit)
            .map_err(|e| internal("list task versions", e))?;
        Ok(Response::new(ListVersionsResponse {
            token: next_token(offset, limit, rows.len()),
            versions: rows
                .iter()
                .map(|row| VersionResponse {
                    version: row.version.clone(),
                    deployed_at: Some(timestamp(row.created_ms)),
                    ..Default::default()
                })
                .collect(),
        }))
    }
}
