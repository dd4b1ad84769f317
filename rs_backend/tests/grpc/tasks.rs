//! TaskService: deploy (idempotent per version), details, latest versions, and runs of a
//! deployed task by its id.

use flyteidl2::flyteidl::common::{filter, Filter, ListRequest, ProjectIdentifier};
use flyteidl2::flyteidl::task::task_service_client::TaskServiceClient;
use flyteidl2::flyteidl::task::{
    list_tasks_request, DeployTaskRequest, GetTaskDetailsRequest, ListTasksRequest,
    ListVersionsRequest, TaskIdentifier, TaskName,
};
use flyteidl2::flyteidl::workflow::{create_run_request, CreateRunRequest};
use tonic::transport::Channel;
use tonic::Code;

use crate::common::{phase_of, run_id, Harness};
use flyteidl2::flyteidl::common::ActionPhase;

fn id(name: &str, version: &str) -> TaskIdentifier {
    TaskIdentifier {
        org: "local".into(),
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: name.into(),
        version: version.into(),
    }
}

async fn client(h: &Harness) -> TaskServiceClient<Channel> {
    let addr = h.backend.as_ref().expect("running").local_addr();
    TaskServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

#[tokio::test]
async fn deployed_tasks_are_listed_by_latest_version_and_run_by_id() {
    let mut h = Harness::start().await;
    let mut tasks = client(&h).await;
    let spec = h.task("succeed").spec();
    for (name, version) in [
        ("env.a", "v1"),
        ("env.a", "v2"),
        ("env.b", "v1"),
        ("other.c", "v1"),
    ] {
        tasks
            .deploy_task(DeployTaskRequest {
                task_id: Some(id(name, version)),
                spec: Some(spec.clone()),
                triggers: vec![],
            })
            .await
            .expect("deploy");
        // Distinct first-deploy times, so "latest" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Deploying a version again is fine (a no-op for the same code).
    tasks
        .deploy_task(DeployTaskRequest {
            task_id: Some(id("env.a", "v1")),
            spec: Some(spec.clone()),
            triggers: vec![],
        })
        .await
        .expect("redeploy");

    let scope = Some(list_tasks_request::ScopeBy::ProjectId(ProjectIdentifier {
        organization: "local".into(),
        domain: "development".into(),
        name: "flytesnacks".into(),
    }));
    let all = tasks
        .list_tasks(ListTasksRequest {
            scope_by: scope.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let latest: Vec<_> = all
        .tasks
        .iter()
        .map(|t| {
            let id = t.task_id.as_ref().expect("id");
            (id.name.as_str(), id.version.as_str())
        })
        .collect();
    assert_eq!(
        latest,
        [("other.c", "v1"), ("env.b", "v1"), ("env.a", "v2")]
    );

    let of_env = tasks
        .list_tasks(ListTasksRequest {
            scope_by: scope.clone(),
            request: Some(ListRequest {
                filters: vec![Filter {
                    function: filter::Function::Contains as i32,
                    field: "name".into(),
                    values: vec!["env.".into()],
                }],
                limit: 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    assert_eq!(of_env.tasks.len(), 1);
    assert_eq!(of_env.token, "1", "a full page has a next page");

    let bad_filter = tasks
        .list_tasks(ListTasksRequest {
            request: Some(ListRequest {
                filters: vec![Filter {
                    function: filter::Function::GreaterThan as i32,
                    field: "version".into(),
                    values: vec!["v1".into()],
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("unsupported filter");
    assert_eq!(bad_filter.code(), Code::InvalidArgument);

    let versions = tasks
        .list_versions(ListVersionsRequest {
            task_name: Some(TaskName {
                org: "local".into(),
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "env.a".into(),
            }),
            request: None,
        })
        .await
        .expect("versions")
        .into_inner();
    let names: Vec<_> = versions
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(names, ["v2", "v1"]);

    let details = tasks
        .get_task_details(GetTaskDetailsRequest {
            task_id: Some(id("env.a", "v1")),
        })
        .await
        .expect("details")
        .into_inner()
        .details
        .expect("details");
    assert_eq!(details.spec, Some(spec.clone()));
    let missing = tasks
        .get_task_details(GetTaskDetailsRequest {
            task_id: Some(id("env.a", "v9")),
        })
        .await
        .expect_err("no such version");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().contains("v2, v1"), "{missing}");

    let unknown_project = tasks
        .deploy_task(DeployTaskRequest {
            task_id: Some(TaskIdentifier {
                project: "nope".into(),
                ..id("env.a", "v1")
            }),
            spec: Some(spec.clone()),
            triggers: vec![],
        })
        .await
        .expect_err("unknown project");
    assert_eq!(unknown_project.code(), Code::NotFound);
    let long_version = tasks
        .deploy_task(DeployTaskRequest {
            task_id: Some(id("env.a", &"v".repeat(64))),
            spec: Some(spec),
            triggers: vec![],
        })
        .await
        .expect_err("version too long");
    assert_eq!(long_version.code(), Code::InvalidArgument);

    // A run of a deployed task, by id.
    h.runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id("byid"))),
            task: Some(create_run_request::Task::TaskId(id("env.b", "v1"))),
            ..Default::default()
        })
        .await
        .expect("run by id");
    let done = h.wait_terminal("byid", "a0").await;
    assert_eq!(phase_of(&done), ActionPhase::Succeeded);
    let not_deployed = h
        .runs
        .create_run(CreateRunRequest {
            id: Some(create_run_request::Id::RunId(run_id("byid2"))),
            task: Some(create_run_request::Task::TaskId(id("env.zzz", "v1"))),
            ..Default::default()
        })
        .await
        .expect_err("not deployed");
    assert_eq!(not_deployed.code(), Code::NotFound);
}
