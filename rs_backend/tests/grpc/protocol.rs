//! The one port as clients other than tonic see it: Connect over HTTP/1.1 (unary, server
//! streaming, errors, gzip), signed upload URLs, ProjectService, the request log, and the
//! cluster's run-name rule.

use std::net::SocketAddr;

use bytes::Bytes;
use flyte_backend::idl::flyteidl::cluster::{
    select_cluster_request, SelectClusterRequest, SelectClusterResponse,
};
use flyte_backend::idl::flyteidl::dataproxy::data_proxy_service_client::DataProxyServiceClient;
use flyte_backend::idl::flyteidl::dataproxy::CreateUploadLocationRequest;
use flyteidl2::flyteidl::common::ProjectIdentifier;
use flyteidl2::flyteidl::project::project_service_client::ProjectServiceClient;
use flyteidl2::flyteidl::project::{
    CreateProjectRequest, GetProjectRequest, ListProjectsRequest, ListProjectsResponse, Project,
    UpdateProjectRequest,
};
use flyteidl2::flyteidl::workflow::{create_run_request, CreateRunRequest};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost::Message;
use tonic::transport::Channel;
use tonic::Code;

use crate::common::{run_id, Harness};

const CLUSTER: &str = "/flyteidl2.cluster.ClusterService/SelectCluster";

fn addr(h: &Harness) -> SocketAddr {
    h.backend.as_ref().expect("running").local_addr()
}

async fn channel(h: &Harness) -> Channel {
    Channel::from_shared(format!("http://{}", addr(h)))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// One HTTP/1.1 exchange on a fresh connection.
async fn http1(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, Bytes) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

fn post(addr: SocketAddr, path: &str, content_type: &str) -> http::request::Builder {
    Request::post(format!("http://{addr}{path}"))
        .header("host", addr.to_string())
        .header("content-type", content_type)
        .header("connect-protocol-version", "1")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn select_cluster() -> SelectClusterRequest {
    SelectClusterRequest {
        operation: 1,
        resource: Some(select_cluster_request::Resource::ProjectId(
            ProjectIdentifier {
                organization: "local".into(),
                domain: "development".into(),
                name: "flytesnacks".into(),
            },
        )),
    }
}

#[tokio::test]
async fn connect_unary_over_http1_plain_and_gzipped() {
    let h = Harness::start().await;
    let addr = addr(&h);
    let message = select_cluster().encode_to_vec();

    let request = post(addr, CLUSTER, "application/proto")
        .body(Full::new(Bytes::from(message.clone())))
        .expect("request");
    let (status, headers, body) = http1(addr, request).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(headers["content-type"], "application/proto");
    // Every answer says what answered: clients build no images for this backend.
    assert_eq!(
        headers[flyte_backend::contract::BACKEND_KIND_HEADER],
        flyte_backend::contract::EMBEDDED_BACKEND_KIND
    );
    let answer = SelectClusterResponse::decode(body).expect("a SelectClusterResponse");
    assert_eq!(answer.cluster_endpoint, format!("http://{addr}"));

    // A gzipped request, and a gzipped answer because the client accepts one.
    let request = post(addr, CLUSTER, "application/proto")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(Full::new(Bytes::from(gzip(&message))))
        .expect("request");
    let (status, headers, body) = http1(addr, request).await;
    assert_eq!(status, StatusCode::OK);
    // Small answers go uncompressed even to a client that accepts gzip.
    let body = match headers.get("content-encoding") {
        Some(coding) if coding == "gzip" => gunzip(&body),
        _ => body.to_vec(),
    };
    let answer = SelectClusterResponse::decode(body.as_slice()).expect("decoded");
    assert_eq!(answer.cluster_endpoint, format!("http://{addr}"));
}

#[tokio::test]
async fn connect_errors_are_json_with_the_method_named() {
    let h = Harness::start().await;
    let addr = addr(&h);

    let unknown = "/flyteidl2.app.AppService/Create";
    let request = post(addr, unknown, "application/proto")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (status, headers, body) = http1(addr, request).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(headers["content-type"], "application/json");
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(error["code"], "unimplemented");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("AppService/Create"),
        "{error}"
    );

    // A malformed message is an invalid argument, not a dropped connection.
    let request = post(addr, CLUSTER, "application/proto")
        .body(Full::new(Bytes::from_static(b"\xff\xff\xff")))
        .expect("request");
    let (status, _, body) = http1(addr, request).await;
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["code"], "invalid_argument");

    // JSON messages are refused with the content types that are accepted.
    let request = post(addr, CLUSTER, "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    let (status, headers, _) = http1(addr, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(headers.contains_key("accept-post"));
}

#[tokio::test]
async fn connect_server_streams_end_with_their_status() {
    let h = Harness::start().await;
    let addr = addr(&h);
    let request = flyte_backend::idl::flyteidl::dataproxy::TailLogsRequest {
        action_id: Some(crate::common::action_id("rmissing", "a0")),
        attempt: 1,
        ..Default::default()
    };
    let mut envelope = vec![0u8];
    let message = request.encode_to_vec();
    envelope.extend_from_slice(&(message.len() as u32).to_be_bytes());
    envelope.extend_from_slice(&message);
    let request = post(
        addr,
        "/flyteidl2.dataproxy.DataProxyService/TailLogs",
        "application/connect+proto",
    )
    .body(Full::new(Bytes::from(envelope)))
    .expect("request");
    let (status, headers, body) = http1(addr, request).await;
    // Streams always answer 200; the outcome is in the end-of-stream message.
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/connect+proto");
    assert!(body.len() > 5, "{body:?}");
    assert_eq!(body[0], 0b10, "the only envelope ends the stream");
    let end: serde_json::Value = serde_json::from_slice(&body[5..]).expect("JSON end of stream");
    assert_eq!(end["error"]["code"], "not_found", "{end}");
}

#[tokio::test]
async fn uploads_go_to_signed_urls_checked_like_an_object_store() {
    let h = Harness::start().await;
    let addr = addr(&h);
    let mut proxy = DataProxyServiceClient::new(channel(&h).await);
    let content = b"a code bundle".to_vec();
    let md5 = <md5::Md5 as md5::Digest>::digest(&content).to_vec();
    let location = proxy
        .create_upload_location(CreateUploadLocationRequest {
            org: "local".into(),
            project: "flytesnacks".into(),
            domain: "development".into(),
            filename: "bundle.tar.gz".into(),
            content_md5: md5.clone(),
            content_length: content.len() as i64,
            ..Default::default()
        })
        .await
        .expect("an upload location")
        .into_inner();
    assert!(
        location.native_url.starts_with("file://"),
        "{}",
        location.native_url
    );
    let path_and_query = location
        .signed_url
        .strip_prefix(&format!("http://{addr}"))
        .expect("served by the backend")
        .to_string();
    let content_md5 = location.headers["Content-MD5"].clone();
    let put = |uri: &str, body: &[u8], md5: &str| {
        Request::put(format!("http://{addr}{uri}"))
            .header("host", addr.to_string())
            .header("content-md5", md5)
            .body(Full::new(Bytes::from(body.to_vec())))
            .expect("request")
    };

    // Content that does not match the signed MD5 is refused and nothing is written.
    let (status, _, _) = http1(addr, put(&path_and_query, b"something else", &content_md5)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let native = location
        .native_url
        .strip_prefix("file://")
        .expect("a file URL");
    assert!(!std::path::Path::new(native).exists());

    // A URL that was tampered with is forbidden.
    let tampered = path_and_query.replace("bundle", "other");
    assert_ne!(tampered, path_and_query);
    let (status, _, _) = http1(addr, put(&tampered, &content, &content_md5)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _, body) = http1(addr, put(&path_and_query, &content, &content_md5)).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(std::fs::read(native).expect("uploaded"), content);

    // The grant was for PUT: the same URL does not read the file back.
    let get = Request::get(format!("http://{addr}{path_and_query}"))
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (status, _, _) = http1(addr, get).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Unknown projects have no upload locations.
    let missing = proxy
        .create_upload_location(CreateUploadLocationRequest {
            project: "nosuchproject".into(),
            domain: "development".into(),
            filename: "x".into(),
            content_md5: md5,
            ..Default::default()
        })
        .await
        .expect_err("unknown project");
    assert_eq!(missing.code(), Code::NotFound, "{missing}");
}

#[tokio::test]
async fn archived_projects_are_listed_with_a_state_filter() {
    let h = Harness::start().await;
    let mut projects = ProjectServiceClient::new(channel(&h).await);
    let mut project = Project {
        id: "old".into(),
        name: "old".into(),
        ..Default::default()
    };
    projects
        .create_project(CreateProjectRequest {
            project: Some(project.clone()),
        })
        .await
        .expect("create");
    project.state = 1; // archived
    projects
        .update_project(UpdateProjectRequest {
            project: Some(project),
        })
        .await
        .expect("archive");
    let ids = |listed: ListProjectsResponse| -> Vec<String> {
        listed
            .projects
            .map(|p| p.projects.into_iter().map(|p| p.id).collect())
            .unwrap_or_default()
    };
    let active = projects
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list");
    assert!(!ids(active.into_inner()).contains(&"old".to_string()));
    let archived = projects
        .list_projects(ListProjectsRequest {
            filters: "eq(state,1)".into(),
            ..Default::default()
        })
        .await
        .expect("list archived");
    assert_eq!(ids(archived.into_inner()), vec!["old".to_string()]);
    let refused = projects
        .list_projects(ListProjectsRequest {
            filters: "contains(name,o)".into(),
            ..Default::default()
        })
        .await
        .expect_err("an unsupported filter");
    assert_eq!(refused.code(), Code::Unimplemented, "{refused}");
}

#[tokio::test]
async fn projects_start_with_the_cluster_default_and_can_be_created() {
    let h = Harness::start().await;
    let mut projects = ProjectServiceClient::new(channel(&h).await);
    let listed = projects
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let names: Vec<_> = listed
        .projects
        .as_ref()
        .map(|p| p.projects.iter().map(|p| p.id.clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["flytesnacks".to_string()]);
    let default = &listed.projects.as_ref().expect("projects").projects[0];
    let domains: Vec<_> = default.domains.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(domains, ["development", "staging", "production"]);

    let project = Project {
        id: "demo".into(),
        name: "Demo".into(),
        ..Default::default()
    };
    projects
        .create_project(CreateProjectRequest {
            project: Some(project.clone()),
        })
        .await
        .expect("created");
    let again = projects
        .create_project(CreateProjectRequest {
            project: Some(project),
        })
        .await
        .expect_err("a second create");
    assert_eq!(again.code(), Code::AlreadyExists);
    let got = projects
        .get_project(GetProjectRequest {
            id: "demo".into(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.project.expect("project").name, "Demo");

    let bad = projects
        .create_project(CreateProjectRequest {
            project: Some(Project {
                id: "../etc".into(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("a path is not a project id");
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn run_names_follow_the_cluster_rule() {
    let mut h = Harness::start().await;
    for bad in ["Upper", "under_score", "9lives", &"a".repeat(31)] {
        let request = CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id(bad))),
            task: Some(create_run_request::Task::TaskSpec(h.task("succeed").spec())),
            ..Default::default()
        };
        let err = h.runs.create_run(request).await.expect_err(bad);
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err}");
        assert!(err.message().contains("1-30 characters"), "{err}");
    }
}

#[tokio::test]
async fn the_request_log_records_every_protocol_in_grpc_form() {
    let h =
        Harness::start_with(|c| c.request_log = Some(c.data_dir.with_file_name("requests.jsonl")))
            .await;
    let addr = addr(&h);
    let message = select_cluster().encode_to_vec();
    let request = post(addr, CLUSTER, "application/proto")
        .header("content-encoding", "gzip")
        .body(Full::new(Bytes::from(gzip(&message))))
        .expect("request");
    assert_eq!(http1(addr, request).await.0, StatusCode::OK);
    let mut projects = ProjectServiceClient::new(channel(&h).await);
    projects
        .list_projects(ListProjectsRequest::default())
        .await
        .expect("list");

    let log = std::fs::read_to_string(h.dir.path().join("requests.jsonl")).expect("a request log");
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(entries.len(), 2, "{log}");
    assert_eq!(entries[0]["method"], CLUSTER);
    let logged = base64_decode(entries[0]["message"].as_str().expect("message"));
    assert_eq!(logged, message, "logged decompressed, as sent");
    assert_eq!(
        entries[1]["method"],
        "/flyteidl2.project.ProjectService/ListProjects"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}
