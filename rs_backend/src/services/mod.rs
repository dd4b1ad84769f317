//! The services a Flyte 2 cluster serves, as far as the embedded backend has them:
//! ActionsService (what a parent task's controller talks to), RunService (what `flyte run`
//! and the remote API talk to), RunLogsService, DataProxyService, ClusterService,
//! ProjectService, IdentityService and AuthMetadataService; and the plain HTTP routes.

mod action_watch;
pub mod actions;
pub mod callbacks;
pub mod cluster;
pub mod dataproxy;
pub mod http;
pub mod identity;
pub mod logs;
pub mod projects;
pub mod runs;
pub mod secrets;
mod streams;
pub mod tasks;
pub mod triggers;
pub mod ui;

use std::sync::Arc;

use flyteidl2::flyteidl::actions::actions_service_server::ActionsServiceServer;
use flyteidl2::flyteidl::auth::auth_metadata_service_server::AuthMetadataServiceServer;
use flyteidl2::flyteidl::auth::identity_service_server::IdentityServiceServer;
use flyteidl2::flyteidl::project::project_service_server::ProjectServiceServer;
use flyteidl2::flyteidl::secret::secret_service_server::SecretServiceServer;
use flyteidl2::flyteidl::task::task_service_server::TaskServiceServer;
use flyteidl2::flyteidl::trigger::trigger_service_server::TriggerServiceServer;
use flyteidl2::flyteidl::workflow::run_logs_service_server::RunLogsServiceServer;
use flyteidl2::flyteidl::workflow::run_service_server::RunServiceServer;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::{Router, Server};

use crate::engine::Engine;
use crate::idl::flyteidl::cluster::cluster_service_server::ClusterServiceServer;
use crate::idl::flyteidl::dataproxy::data_proxy_service_server::DataProxyServiceServer;

use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Messages a server stream may buffer before its producer waits for the client.
const STREAM_BUFFER: usize = 64;

type ServerStream<T> = ReceiverStream<Result<T, Status>>;

/// Largest page a listing (tasks, triggers, secrets) may ask for.
const MAX_PAGE: u32 = 1000;

/// Offset and size of a page (`limit` 0: `default`); tokens are decimal offsets.
pub(crate) fn offset_page(limit: u32, token: &str, default: u32) -> Result<(u32, u32), Status> {
    let limit = match limit {
        0 => default,
        n if n > MAX_PAGE => {
            return Err(Status::invalid_argument(format!(
                "request.limit {n} is larger than the maximum of {MAX_PAGE}"
            )))
        }
        n => n,
    };
    let offset = if token.is_empty() {
        0
    } else {
        token.parse::<u32>().map_err(|_| {
            Status::invalid_argument(format!(
                "request.token {token:?} is not a page token issued by this backend"
            ))
        })?
    };
    Ok((offset, limit))
}

/// The page of a `ListRequest` (none: the first page of `default` entries).
pub(crate) fn list_page(
    request: Option<&flyteidl2::flyteidl::common::ListRequest>,
    default: u32,
) -> Result<(u32, u32), Status> {
    match request {
        Some(r) => offset_page(r.limit, &r.token, default),
        None => Ok((0, default)),
    }
}

/// The token of the page after one that returned `got` entries (none after a short page).
pub(crate) fn next_token(offset: u32, limit: u32, got: usize) -> String {
    if got == limit as usize {
        (offset + limit).to_string()
    } else {
        String::new()
    }
}

fn unsupported(method: &str) -> Status {
    Status::unimplemented(format!("{method} is not supported by the embedded backend"))
}

/// Every service, each taking gzip and large messages, on `server`.
pub fn add_all<L: Clone>(
    server: &mut Server<L>,
    engine: &Arc<Engine>,
    files: &Arc<http::Files>,
    tls: bool,
) -> Router<L> {
    // The same settings for every generated server type.
    macro_rules! configured {
        ($server:expr) => {
            $server
                .max_decoding_message_size(engine.config.max_message_bytes)
                .max_encoding_message_size(engine.config.max_message_bytes)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
        };
    }
    let endpoint = engine.endpoint.clone();
    let scheme = if tls { "https" } else { "http" };
    server
        .add_service(configured!(ActionsServiceServer::new(
            actions::ActionsApi::new(engine.clone())
        )))
        .add_service(configured!(RunServiceServer::new(runs::RunsApi::new(
            engine.clone()
        ))))
        .add_service(configured!(RunLogsServiceServer::new(logs::LogsApi::new(
            engine.clone()
        ))))
        .add_service(configured!(DataProxyServiceServer::new(
            dataproxy::DataProxyApi::new(engine.clone(), files.clone(), tls)
        )))
        .add_service(configured!(ClusterServiceServer::new(
            cluster::ClusterApi::new(tls, endpoint.clone())
        )))
        .add_service(configured!(TaskServiceServer::new(tasks::TasksApi::new(
            engine.clone()
        ))))
        .add_service(configured!(TriggerServiceServer::new(
            triggers::TriggersApi::new(engine.clone())
        )))
        .add_service(configured!(SecretServiceServer::new(
            secrets::SecretsApi::new(engine.clone())
        )))
        .add_service(configured!(ProjectServiceServer::new(
            projects::ProjectsApi::new(engine.clone())
        )))
        .add_service(configured!(IdentityServiceServer::new(
            identity::IdentityApi
        )))
        .add_service(configured!(AuthMetadataServiceServer::new(
            crate::auth::AuthMetadataApi::new(
                engine.auth.clone(),
                format!("{scheme}://{endpoint}")
            )
        )))
}
