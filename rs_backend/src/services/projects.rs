//! flyteidl2.project.ProjectService. A fresh backend has the project a fresh cluster has
//! ("flytesnacks"); every project has the cluster's three domains.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use flyteidl2::flyteidl::project::project_service_server::ProjectService;
use flyteidl2::flyteidl::project::{
    CreateProjectRequest, CreateProjectResponse, Domain, GetProjectRequest, GetProjectResponse,
    ListProjectsRequest, ListProjectsResponse, Project, ProjectState, Projects,
    UpdateProjectRequest, UpdateProjectResponse,
};

use crate::clock::now_ms;
use crate::engine::{internal, Engine};
use crate::store::StoreError;

/// The project every fresh Flyte installation starts with.
pub const DEFAULT_PROJECT: &str = "flytesnacks";
/// Domains of every project, as a cluster configures them by default.
pub const DOMAINS: [(&str, &str); 3] = [
    ("development", "Development"),
    ("staging", "Staging"),
    ("production", "Production"),
];
const MAX_PAGE: u32 = 1000;

fn with_domains(mut project: Project) -> Project {
    project.domains = DOMAINS
        .iter()
        .map(|(id, name)| Domain {
            id: (*id).into(),
            name: (*name).into(),
        })
        .collect();
    project
}

/// Adds the default project unless the store already has it (it may have been archived).
pub fn seed(engine: &Engine) -> Result<(), StoreError> {
    let project = Project {
        id: DEFAULT_PROJECT.into(),
        name: DEFAULT_PROJECT.into(),
        state: ProjectState::Active as i32,
        ..Default::default()
    };
    engine
        .store
        .project_insert("", DEFAULT_PROJECT, &project.encode_to_vec(), now_ms())
        .map(|_| ())
}

/// Project ids become parts of paths and names: a DNS-1123 label.
fn check_id(id: &str) -> Result<(), Status> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "project.id {id:?} must be 1-63 lowercase letters, digits or '-', not starting or \
             ending with '-'"
        )))
    }
}

/// A project as a caller sent it, checked and ready to store: named after its id when
/// unnamed, without domains (they are the cluster's, not the caller's).
fn from_request(project: Option<Project>) -> Result<Project, Status> {
    let mut project = project.ok_or_else(|| Status::invalid_argument("project is required"))?;
    check_id(&project.id)?;
    if project.name.is_empty() {
        project.name = project.id.clone();
    }
    project.domains.clear();
    Ok(project)
}

pub struct ProjectsApi {
    engine: Arc<Engine>,
}

impl ProjectsApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    fn stored(&self, org: &str, id: &str) -> Result<Project, Status> {
        let bytes = self
            .engine
            .store
            .project_get(org, id)
            .map_err(|e| internal("read project", e))?
            .ok_or_else(|| Status::not_found(format!("project {id:?} does not exist")))?;
        Project::decode(bytes.as_slice())
            .map(with_domains)
            .map_err(|e| Status::internal(format!("stored project {id:?} is unreadable: {e}")))
    }
}

/// Whether a backend knows a project: other services refuse work for unknown ones.
pub fn exists(engine: &Engine, org: &str, id: &str) -> Result<bool, Status> {
    engine
        .store
        .project_get(org, id)
        .map(|p| p.is_some())
        .map_err(|e| internal("read project", e))
}

/// Ok if the project exists; NOT_FOUND naming it otherwise. The org is ignored, as a
/// single-tenant cluster ignores it (projects, like runs, are not kept per org).
pub fn require(engine: &Engine, _org: &str, project: &str) -> Result<(), Status> {
    if project.is_empty() {
        return Err(Status::invalid_argument("project is required"));
    }
    if exists(engine, "", project)? {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "project {project:?} not found; create it with `flyte create project` \
             (ProjectService.CreateProject)"
        )))
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectsApi {
    async fn create_project(
        &self,
        request: Request<CreateProjectRequest>,
    ) -> Result<Response<CreateProjectResponse>, Status> {
        let project = from_request(request.into_inner().project)?;
        let added = self
            .engine
            .store
            .project_insert(
                // Single-tenant, like runs and tasks: projects are not kept per org.
                "",
                &project.id,
                &project.encode_to_vec(),
                now_ms(),
            )
            .map_err(|e| internal("create project", e))?;
        if !added {
            return Err(Status::already_exists(format!(
                "project {:?} already exists",
                project.id
            )));
        }
        Ok(Response::new(CreateProjectResponse {}))
    }

    async fn update_project(
        &self,
        request: Request<UpdateProjectRequest>,
    ) -> Result<Response<UpdateProjectResponse>, Status> {
        let project = from_request(request.into_inner().project)?;
        let updated = self
            .engine
            .store
            .project_update("", &project.id, &project.encode_to_vec())
            .map_err(|e| internal("update project", e))?;
        if !updated {
            return Err(Status::not_found(format!(
                "project {:?} does not exist",
                project.id
            )));
        }
        Ok(Response::new(UpdateProjectResponse {}))
    }

    async fn get_project(
        &self,
        request: Request<GetProjectRequest>,
    ) -> Result<Response<GetProjectResponse>, Status> {
        let request = request.into_inner();
        if request.id.is_empty() {
            return Err(Status::invalid_argument("id is required"));
        }
        Ok(Response::new(GetProjectResponse {
            project: Some(self.stored("", &request.id)?),
        }))
    }

    async fn list_projects(
        &self,
        request: Request<ListProjectsRequest>,
    ) -> Result<Response<ListProjectsResponse>, Status> {
        let request = request.into_inner();
        let wanted = state_filter(&request.filters)?;
        let limit = match request.limit {
            0 => 100,
            n => n.min(MAX_PAGE),
        };
        let rows = self
            .engine
            .store
            .project_page("", &request.token, limit + 1)
            .map_err(|e| internal("list projects", e))?;
        let more = rows.len() > limit as usize;
        let mut projects = Vec::new();
        let mut last = String::new();
        for row in rows.into_iter().take(limit as usize) {
            last = row.id.clone();
            let project = Project::decode(row.project.as_slice()).map_err(|e| {
                Status::internal(format!("stored project {:?} is unreadable: {e}", row.id))
            })?;
            let archived = project.state == ProjectState::Archived as i32
                || project.state == ProjectState::SystemArchived as i32;
            // Without a filter archived projects are hidden, as on a cluster.
            let shown = match wanted {
                None => !archived,
                Some(state) => project.state == state,
            };
            if !shown {
                continue;
            }
            projects.push(with_domains(project));
        }
        let token = if more { last } else { String::new() };
        Ok(Response::new(ListProjectsResponse {
            projects: Some(Projects { projects, token }),
        }))
    }
}

/// The project state a ListProjects filter asks for: `eq(state,N)`, the filter admin clients
/// send to list archived (1) or active (0) projects; no filter is `None`.
fn state_filter(filters: &str) -> Result<Option<i32>, Status> {
    let text = filters.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let state = text
        .strip_prefix("eq(state,")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.trim().parse::<i32>().ok())
        .filter(|n| ProjectState::try_from(*n).is_ok());
    match state {
        Some(n) => Ok(Some(n)),
        None => Err(Status::unimplemented(format!(
            "ListProjects filter {text:?} is not supported by the embedded backend; it takes eq(state,N)"
        ))),
    }
}
