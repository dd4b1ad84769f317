//! flyteidl2.secret.SecretService: secrets for tasks, scoped to a project and domain, a
//! domain, or every project. Values go in and never come back out: reads return metadata.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use flyteidl2::flyteidl::secret::secret_service_server::SecretService;
use flyteidl2::flyteidl::secret::{
    secret_spec, CreateSecretRequest, CreateSecretResponse, DeleteSecretRequest,
    DeleteSecretResponse, GetSecretRequest, GetSecretResponse, ListSecretsRequest,
    ListSecretsResponse, OverallStatus, Secret, SecretIdentifier, SecretMetadata, SecretSpec,
    SecretStatus, UpdateSecretRequest, UpdateSecretResponse,
};

use crate::clock::{now_ms, timestamp};
use crate::engine::{internal, Engine};
use crate::names::check_segment;
use crate::services::{next_token, offset_page, projects};
use crate::store::SecretRow;

/// Largest secret value accepted.
const MAX_VALUE_BYTES: usize = 1024 * 1024;
const DEFAULT_PAGE: u32 = 100;

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// (project, domain, name) of an identifier: a project needs its domain.
fn scope(id: Option<&SecretIdentifier>) -> Result<(String, String, String), Status> {
    let id = id.ok_or_else(|| invalid("id is required"))?;
    check_segment("id.name", &id.name, true).map_err(invalid)?;
    check_segment("id.project", &id.project, false).map_err(invalid)?;
    check_segment("id.domain", &id.domain, false).map_err(invalid)?;
    if !id.project.is_empty() && id.domain.is_empty() {
        return Err(invalid(
            "a project-scoped secret also needs its domain (or leave both empty for every project)",
        ));
    }
    Ok((id.project.clone(), id.domain.clone(), id.name.clone()))
}

fn value_of(spec: Option<SecretSpec>) -> Result<(i32, Vec<u8>), Status> {
    let spec = spec.ok_or_else(|| invalid("secret_spec is required"))?;
    let value = match spec.value {
        Some(secret_spec::Value::StringValue(s)) => s.into_bytes(),
        Some(secret_spec::Value::BinaryValue(b)) => b,
        None => return Err(invalid("secret_spec needs a string_value or binary_value")),
    };
    if value.len() > MAX_VALUE_BYTES {
        return Err(invalid(format!(
            "a secret value may be at most {MAX_VALUE_BYTES} bytes"
        )));
    }
    Ok((spec.r#type, value))
}

fn described(row: &SecretRow, org: &str) -> Secret {
    Secret {
        id: Some(SecretIdentifier {
            name: row.name.clone(),
            organization: org.to_string(),
            domain: row.domain.clone(),
            project: row.project.clone(),
        }),
        secret_metadata: Some(SecretMetadata {
            created_time: Some(timestamp(row.created_ms)),
            secret_status: Some(SecretStatus {
                overall_status: OverallStatus::FullyPresent as i32,
                cluster_status: Vec::new(),
            }),
            r#type: row.kind,
        }),
    }
}

fn not_found(project: &str, domain: &str, name: &str) -> Status {
    let where_ = match (project.is_empty(), domain.is_empty()) {
        (true, true) => "for every project".to_string(),
        (true, false) => format!("in domain {domain}"),
        _ => format!("in {project}/{domain}"),
    };
    Status::not_found(format!("secret {name:?} not found {where_}"))
}

pub struct SecretsApi {
    engine: Arc<Engine>,
}

impl SecretsApi {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    fn row(
        &self,
        project: String,
        domain: String,
        name: String,
        kind: i32,
        value: &[u8],
    ) -> SecretRow {
        SecretRow {
            sealed: self.engine.sealer.seal(&project, &domain, &name, value),
            project,
            domain,
            name,
            kind,
            created_ms: now_ms(),
        }
    }
}

#[tonic::async_trait]
impl SecretService for SecretsApi {
    async fn create_secret(
        &self,
        request: Request<CreateSecretRequest>,
    ) -> Result<Response<CreateSecretResponse>, Status> {
        let request = request.into_inner();
        let (project, domain, name) = scope(request.id.as_ref())?;
        if !project.is_empty() {
            let org = request
                .id
                .as_ref()
                .map(|i| i.organization.clone())
                .unwrap_or_default();
            projects::require(&self.engine, &org, &project)?;
        }
        let (kind, value) = value_of(request.secret_spec)?;
        let row = self.row(project, domain, name.clone(), kind, &value);
        let added = self
            .engine
            .store
            .secret_insert(&row)
            .map_err(|e| internal("create secret", e))?;
        if !added {
            return Err(Status::already_exists(format!(
                "secret {name:?} already exists in this scope; delete it first, or update it"
            )));
        }
        Ok(Response::new(CreateSecretResponse {}))
    }

    async fn update_secret(
        &self,
        request: Request<UpdateSecretRequest>,
    ) -> Result<Response<UpdateSecretResponse>, Status> {
        let request = request.into_inner();
        let (project, domain, name) = scope(request.id.as_ref())?;
        let (kind, value) = value_of(request.secret_spec)?;
        let row = self.row(project.clone(), domain.clone(), name.clone(), kind, &value);
        let changed = self
            .engine
            .store
            .secret_update(&row)
            .map_err(|e| internal("update secret", e))?;
        if !changed {
            return Err(not_found(&project, &domain, &name));
        }
        Ok(Response::new(UpdateSecretResponse {}))
    }

    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let request = request.into_inner();
        let (project, domain, name) = scope(request.id.as_ref())?;
        let org = request.id.map(|i| i.organization).unwrap_or_default();
        let row = self
            .engine
            .store
            .secret_get(&project, &domain, &name)
            .map_err(|e| internal("read secret", e))?
            .ok_or_else(|| not_found(&project, &domain, &name))?;
        Ok(Response::new(GetSecretResponse {
            secret: Some(described(&row, &org)),
        }))
    }

    async fn delete_secret(
        &self,
        request: Request<DeleteSecretRequest>,
    ) -> Result<Response<DeleteSecretResponse>, Status> {
        let request = request.into_inner();
        let (project, domain, name) = scope(request.id.as_ref())?;
        let removed = self
            .engine
            .store
            .secret_delete(&project, &domain, &name)
            .map_err(|e| internal("delete secret", e))?;
        if !removed {
            return Err(not_found(&project, &domain, &name));
        }
        Ok(Response::new(DeleteSecretResponse {}))
    }

    async fn list_secrets(
        &self,
        request: Request<ListSecretsRequest>,
    ) -> Result<Response<ListSecretsResponse>, Status> {
        let request = request.into_inner();
        let limit = u32::try_from(request.limit).unwrap_or(0);
        let (offset, limit) = offset_page(limit, &request.token, DEFAULT_PAGE)?;
        // An empty scope lists every secret, as a cluster does for an org-wide listing.
        let project = (!request.project.is_empty()).then_some(request.project.as_str());
        let domain = (!request.domain.is_empty()).then_some(request.domain.as_str());
        let rows = self
            .engine
            .store
            .secret_list(project, domain, offset, limit)
            .map_err(|e| internal("list secrets", e))?;
        let token = next_token(offset, limit, rows.len());
        Ok(Response::new(ListSecretsResponse {
            secrets: rows
                .iter()
                .map(|r| described(r, &request.organization))
                .collect(),
            token,
            per_cluster_tokens: Default::default(),
        }))
    }
}
