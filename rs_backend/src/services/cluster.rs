//! flyteidl2.cluster.ClusterService: which endpoint serves data operations. There is one
//! backend, so the answer is always the address the client reached it by.

use tonic::{Request, Response, Status};

use crate::idl::flyteidl::cluster::cluster_service_server::ClusterService;
use crate::idl::flyteidl::cluster::{SelectClusterRequest, SelectClusterResponse};

pub struct ClusterApi {
    scheme: &'static str,
    /// Used when a request carries no host (a client that sent neither Host nor :authority).
    endpoint: String,
}

impl ClusterApi {
    pub fn new(tls: bool, endpoint: String) -> Self {
        let scheme = if tls { "https" } else { "http" };
        Self { scheme, endpoint }
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    async fn select_cluster(
        &self,
        request: Request<SelectClusterRequest>,
    ) -> Result<Response<SelectClusterResponse>, Status> {
        let host = request
            .metadata()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or(&self.endpoint);
        // A proxy in front of the backend says how clients reach it.
        let scheme = request
            .metadata()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| v == "http" || v == "https")
            .unwrap_or_else(|| self.scheme.to_string());
        Ok(Response::new(SelectClusterResponse {
            cluster_endpoint: format!("{scheme}://{host}"),
            cluster: String::new(),
        }))
    }
}
