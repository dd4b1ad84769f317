//! Triggers deployed with a task, fired by the scheduler on a clock the test drives: one run
//! per due tick, the latest missed tick only, nothing twice across a restart, nothing while
//! inactive; the kick-off time reaches the named input; runs are listed by their trigger.

use flyteidl2::flyteidl::common::{ListRequest, TriggerName};
use flyteidl2::flyteidl::core::{literal, primitive, scalar};
use flyteidl2::flyteidl::task::task_service_client::TaskServiceClient;
use flyteidl2::flyteidl::task::{
    schedule, trigger_automation_spec, Cron, DeployTaskRequest, Schedule, TaskIdentifier,
    TaskTrigger, TaskTriggerSpec, TriggerAutomationSpec, TriggerAutomationSpecType,
};
use flyteidl2::flyteidl::trigger::trigger_service_client::TriggerServiceClient;
use flyteidl2::flyteidl::trigger::{GetTriggerDetailsRequest, UpdateTriggersRequest};
use flyteidl2::flyteidl::workflow::{list_runs_request, ListRunsRequest, RunSource};
use tonic::transport::Channel;
use tonic::Code;

use crate::common::Harness;

const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

async fn channel(h: &Harness) -> Channel {
    let addr = h.backend.as_ref().expect("running").local_addr();
    Channel::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

fn hourly(name: &str, kickoff: &str) -> TaskTrigger {
    TaskTrigger {
        name: name.into(),
        spec: Some(TaskTriggerSpec {
            active: true,
            ..Default::default()
        }),
        automation_spec: Some(TriggerAutomationSpec {
            r#type: TriggerAutomationSpecType::TypeSchedule as i32,
            automation: Some(trigger_automation_spec::Automation::Schedule(Schedule {
                expression: Some(schedule::Expression::Cron(Cron {
                    expression: "0 * * * *".into(),
                    timezone: "UTC".into(),
                })),
                kickoff_time_input_arg: kickoff.into(),
            })),
        }),
    }
}

fn trigger_name() -> TriggerName {
    TriggerName {
        org: "local".into(),
        project: "flytesnacks".into(),
        domain: "development".into(),
        name: "every_hour".into(),
        task_name: "env.t".into(),
    }
}

async fn run_names(h: &mut Harness) -> Vec<String> {
    let runs = h
        .runs
        .list_runs(ListRunsRequest {
            request: Some(ListRequest {
                limit: 100,
                ..Default::default()
            }),
            scope_by: Some(list_runs_request::ScopeBy::TriggerName(trigger_name())),
            ..Default::default()
        })
        .await
        .expect("list runs")
        .into_inner();
    for run in &runs.runs {
        let metadata = run.action.as_ref().and_then(|a| a.metadata.as_ref());
        let metadata = metadata.expect("metadata");
        assert_eq!(metadata.trigger_name, "every_hour");
        assert_eq!(metadata.source, RunSource::ScheduleTrigger as i32);
    }
    runs.runs
        .iter()
        .filter_map(|r| r.action.as_ref()?.id.as_ref()?.run.as_ref())
        .map(|r| r.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_fire_once_latest_first_and_not_while_inactive() {
    let mut h = Harness::start().await;
    let mut tasks = TaskServiceClient::new(channel(&h).await);
    let deployed_at = now_ms();
    tasks
        .deploy_task(DeployTaskRequest {
            task_id: Some(TaskIdentifier {
                org: "local".into(),
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "env.t".into(),
                version: "v1".into(),
            }),
            spec: Some(h.task("succeed").spec()),
            triggers: vec![hourly("every_hour", "when")],
        })
        .await
        .expect("deploy");
    let first = (deployed_at / HOUR + 1) * HOUR;
    let backend = h.backend.as_ref().expect("running");
    assert_eq!(backend.fire_due_triggers(first - 1).await, 0, "not yet");
    assert_eq!(backend.fire_due_triggers(first).await, 1, "the first tick");
    assert_eq!(
        backend.fire_due_triggers(first + 10).await,
        0,
        "once per tick"
    );
    // Three hours pass unseen: one catch-up run, for the latest tick.
    assert_eq!(
        backend.fire_due_triggers(first + 3 * HOUR + 60_000).await,
        1
    );
    assert_eq!(run_names(&mut h).await.len(), 2);

    // The kick-off time is the tick's, in the input the schedule names.
    let name = run_names(&mut h).await.into_iter().min().expect("a run");
    let data = h
        .runs
        .get_action_data(flyteidl2::flyteidl::workflow::GetActionDataRequest {
            action_id: Some(flyteidl2::flyteidl::common::ActionIdentifier {
                run: Some(flyteidl2::flyteidl::common::RunIdentifier {
                    org: String::new(),
                    project: "flytesnacks".into(),
                    domain: "development".into(),
                    name,
                }),
                name: "a0".into(),
            }),
        })
        .await
        .expect("inputs")
        .into_inner();
    let when = data
        .inputs
        .expect("inputs")
        .literals
        .into_iter()
        .find(|l| l.name == "when")
        .and_then(|l| match l.value?.value? {
            literal::Value::Scalar(s) => match s.value? {
                scalar::Value::Primitive(p) => match p.value? {
                    primitive::Value::Datetime(ts) => Some(ts.seconds * 1000),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .expect("a datetime input named 'when'");
    assert!(when == first || when == first + 3 * HOUR, "{when}");

    // A restart neither repeats a fired tick nor loses the schedule.
    h.backend.take().expect("backend").shutdown().await;
    h.restart(|_| {}).await;
    let backend = h.backend.as_ref().expect("running");
    assert_eq!(
        backend.fire_due_triggers(first + 3 * HOUR + 120_000).await,
        0
    );
    assert_eq!(backend.fire_due_triggers(first + 4 * HOUR).await, 1);

    // Inactive triggers do not fire; active again, they do.
    let mut triggers = TriggerServiceClient::new(channel(&h).await);
    triggers
        .update_triggers(UpdateTriggersRequest {
            names: vec![trigger_name()],
            active: false,
        })
        .await
        .expect("deactivate");
    let backend = h.backend.as_ref().expect("running");
    assert_eq!(backend.fire_due_triggers(first + 5 * HOUR).await, 0);
    triggers
        .update_triggers(UpdateTriggersRequest {
            names: vec![trigger_name()],
            active: true,
        })
        .await
        .expect("activate");
    let details = triggers
        .get_trigger_details(GetTriggerDetailsRequest {
            name: Some(trigger_name()),
        })
        .await
        .expect("details")
        .into_inner()
        .trigger
        .expect("trigger");
    assert!(details.spec.expect("spec").active);
    let backend = h.backend.as_ref().expect("running");
    assert_eq!(backend.fire_due_triggers(first + 6 * HOUR).await, 1);
    assert_eq!(run_names(&mut h).await.len(), 4);

    // A bad schedule is refused at deploy, naming the trigger.
    let mut tasks = TaskServiceClient::new(channel(&h).await);
    let mut bad = hourly("broken", "");
    if let Some(spec) = bad.automation_spec.as_mut() {
        spec.automation = Some(trigger_automation_spec::Automation::Schedule(Schedule {
            expression: Some(schedule::Expression::Cron(Cron {
                expression: "61 * * * *".into(),
                timezone: String::new(),
            })),
            kickoff_time_input_arg: String::new(),
        }));
    }
    let err = tasks
        .deploy_task(DeployTaskRequest {
            task_id: Some(TaskIdentifier {
                org: "local".into(),
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "env.t".into(),
                version: "v2".into(),
            }),
            spec: Some(h.task("succeed").spec()),
            triggers: vec![bad],
        })
        .await
        .expect_err("bad cron");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("broken"), "{err}");
}
