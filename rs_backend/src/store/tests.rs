use flyteidl2::flyteidl::common::{
    filter::Function, sort::Direction, ActionPhase, Filter, ListRequest, Sort,
};

use super::*;
use crate::listing::{Listed, Query};

pub(crate) fn run_key(name: &str) -> RunKey {
    RunKey {
        org: String::new(),
        project: "p".into(),
        domain: "d".into(),
        name: name.into(),
    }
}

pub(crate) fn new_action(
    run: &RunKey,
    name: &str,
    parent: Option<&str>,
    kind: ActionKind,
) -> NewAction {
    NewAction {
        run: run.clone(),
        name: name.into(),
        parent: parent.map(str::to_string),
        group: String::new(),
        kind,
        spec: vec![1, 2, 3],
        task_name: "t".into(),
        task_version: "v1".into(),
        input_uri: "file:///in.pb".into(),
        run_output_base: "file:///base/".into(),
        phase: ActionPhase::Queued,
        attempts: 0,
        output_uri: None,
        started_ms: None,
        ended_ms: None,
        cache_hit: false,
    }
}

fn reported(phase: ActionPhase) -> ReportedPhase {
    ReportedPhase {
        phase,
        started_ms: None,
        ended_ms: None,
        output_uri: None,
    }
}

pub(crate) fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("backend.db")).unwrap();
    (dir, store)
}

pub(crate) fn create(store: &Store, name: &str) -> ActionRecord {
    let run = run_key(name);
    store
        .create_run(
            Some(b"spec"),
            None,
            &new_action(&run, "a0", None, ActionKind::Task),
            1,
        )
        .unwrap()
        .unwrap()
}

fn end(next: NextStep, phase: ActionPhase) -> AttemptEnd {
    AttemptEnd {
        attempt_phase: phase,
        error: None,
        output_uri: Some("file:///out/".into()),
        ended_ms: 50,
        next,
    }
}

#[test]
fn runs_are_unique() {
    let (_dir, store) = open();
    let root = create(&store, "r1");
    assert_eq!(root.name, "a0");
    assert_eq!(root.parent, None);
    assert_eq!(root.phase, ActionPhase::Queued);
    let again = store
        .create_run(
            None,
            None,
            &new_action(&run_key("r1"), "a0", None, ActionKind::Task),
            2,
        )
        .unwrap();
    assert!(again.is_none());
    let run = store.run(&run_key("r1")).unwrap().unwrap();
    assert_eq!(run.run_spec.as_deref(), Some(&b"spec"[..]));
    assert!(store.run(&run_key("nope")).unwrap().is_none());
}

#[test]
fn insert_is_idempotent() {
    let (_dir, store) = open();
    create(&store, "r1");
    let run = run_key("r1");
    let child = new_action(&run, "c1", Some("a0"), ActionKind::Task);
    assert!(store.insert_action(&child, 5).unwrap().is_some());
    let mut changed = child.clone();
    changed.input_uri = "file:///other.pb".into();
    assert!(store.insert_action(&changed, 6).unwrap().is_none());
    let stored = store.action(&run, "c1").unwrap().unwrap();
    assert_eq!(stored.input_uri, "file:///in.pb");
    assert_eq!(store.children(&run, "a0").unwrap().len(), 1);
}

#[test]
fn attempts_succeed_and_retry() {
    let (_dir, store) = open();
    let root = create(&store, "r1");
    // Only the next attempt number starts.
    assert!(store
        .start_attempt(root.seq, 2, "/l", 10)
        .unwrap()
        .is_none());
    let running = store
        .start_attempt(root.seq, 1, "/l1", 10)
        .unwrap()
        .unwrap();
    assert_eq!(running.phase, ActionPhase::Running);
    assert_eq!(running.attempts, 1);
    assert_eq!(running.started_ms, Some(10));
    assert!(
        running.version > root.version,
        "every change bumps the version"
    );
    // Not queued any more: a second start is refused.
    assert!(store
        .start_attempt(root.seq, 2, "/l", 11)
        .unwrap()
        .is_none());

    let process = ProcessRef {
        pid: 4242,
        start_ticks: 99,
    };
    store.set_process(root.seq, 1, process).unwrap();
    assert_eq!(
        store.action_by_seq(root.seq).unwrap().unwrap().process,
        Some(process)
    );

    let retried = store
        .finish_attempt(
            root.seq,
            1,
            &end(
                NextStep::Retry {
                    system: true,
                    delay: std::time::Duration::ZERO,
                },
                ActionPhase::Failed,
            ),
        )
        .unwrap()
        .unwrap();
    assert_eq!(retried.phase, ActionPhase::Queued);
    assert_eq!(retried.system_retries, 1);
    assert_eq!(retried.process, None);
    assert_eq!(retried.user_attempts(), 0);

    // A worker's attempt: its process is known at the start and recorded with it.
    let on_worker = store
        .start_attempt_in(root.seq, 2, "/l2", 20, Some(process))
        .unwrap()
        .unwrap();
    assert_eq!(on_worker.process, Some(process));
    let done = store
        .finish_attempt(
            root.seq,
            2,
            &end(
                NextStep::Finish(ActionPhase::Succeeded),
                ActionPhase::Succeeded,
            ),
        )
        .unwrap()
        .unwrap();
    assert_eq!(done.phase, ActionPhase::Succeeded);
    assert_eq!(done.output_uri.as_deref(), Some("file:///out/"));
    assert_eq!(done.ended_ms, Some(50));
    assert_eq!(done.started_ms, Some(10), "the first start is kept");

    let attempts = store.attempts(root.seq).unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].phase, ActionPhase::Failed);
    assert_eq!(attempts[0].log_path, "/l1");
    assert_eq!(attempts[1].phase, ActionPhase::Succeeded);
    assert!(store.attempt(root.seq, 3).unwrap().is_none());
}

#[test]
fn terminal_actions_never_change() {
    let (_dir, store) = open();
    let root = create(&store, "r1");
    store
        .start_attempt(root.seq, 1, "/l1", 10)
        .unwrap()
        .unwrap();
    let aborted = store.abort(root.seq, "stop", 20).unwrap().unwrap();
    assert_eq!(aborted.phase, ActionPhase::Aborted);
    assert_eq!(aborted.abort_reason.as_deref(), Some("stop"));
    // The open attempt was closed by the abort.
    let attempt = store.attempt(root.seq, 1).unwrap().unwrap();
    assert_eq!(attempt.phase, ActionPhase::Aborted);
    assert_eq!(attempt.ended_ms, Some(20));

    // Neither the process monitor, a second abort, nor an Update can change it.
    assert!(store
        .finish_attempt(
            root.seq,
            1,
            &end(
                NextStep::Finish(ActionPhase::Succeeded),
                ActionPhase::Succeeded
            )
        )
        .unwrap()
        .is_none());
    assert!(store.abort(root.seq, "again", 30).unwrap().is_none());
    assert!(matches!(
        store
            .set_phase(root.seq, &reported(ActionPhase::Running), 40)
            .unwrap(),
        Some(PhaseUpdate::Refused {
            current: ActionPhase::Aborted
        })
    ));
    assert!(matches!(
        store
            .set_phase(root.seq, &reported(ActionPhase::Aborted), 40)
            .unwrap(),
        Some(PhaseUpdate::Unchanged)
    ));
    let stored = store.action_by_seq(root.seq).unwrap().unwrap();
    assert_eq!(stored.phase, ActionPhase::Aborted);
    assert_eq!(stored.ended_ms, Some(20));
}

#[test]
fn reported_phases_apply() {
    let (_dir, store) = open();
    let root = create(&store, "r1");
    match store
        .set_phase(
            root.seq,
            &ReportedPhase {
                started_ms: Some(5),
                ..reported(ActionPhase::Running)
            },
            7,
        )
        .unwrap()
    {
        Some(PhaseUpdate::Applied(record)) => {
            assert_eq!(record.phase, ActionPhase::Running);
            assert_eq!(record.started_ms, Some(5));
            assert_eq!(record.ended_ms, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    match store
        .set_phase(root.seq, &reported(ActionPhase::Failed), 9)
        .unwrap()
    {
        Some(PhaseUpdate::Applied(record)) => assert_eq!(record.ended_ms, Some(9)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(store
        .set_phase(9999, &reported(ActionPhase::Failed), 9)
        .unwrap()
        .is_none());
}

#[test]
fn unfinished_actions_in_enqueue_order() {
    let (_dir, store) = open();
    let root = create(&store, "r1");
    let run = run_key("r1");
    store
        .insert_action(&new_action(&run, "c1", Some("a0"), ActionKind::Task), 2)
        .unwrap();
    let mut trace = new_action(&run, "t1", Some("a0"), ActionKind::Trace);
    trace.phase = ActionPhase::Running;
    store.insert_action(&trace, 3).unwrap();
    let c1 = store.action(&run, "c1").unwrap().unwrap();
    store.abort(c1.seq, "x", 4).unwrap();

    let unfinished: Vec<String> = store
        .unfinished_actions()
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(unfinished, vec!["a0".to_string(), "t1".to_string()]);
    assert_eq!(root.seq, store.action(&run, "a0").unwrap().unwrap().seq);
}

fn listing(listed: Listed, request: ListRequest) -> Query {
    Query::parse(listed, Some(&request), "me").unwrap()
}

fn filter(field: &str, function: Function, values: &[&str]) -> Filter {
    Filter {
        function: function as i32,
        field: field.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

fn run_names(rows: &[(RunRecord, ActionRecord)]) -> Vec<&str> {
    rows.iter().map(|(_, a)| a.run.name.as_str()).collect()
}

#[test]
fn listing_pages_and_filters() {
    let (_dir, store) = open();
    for i in 0..5 {
        create(&store, &format!("r{i}"));
    }
    let all = store
        .list_runs(
            &RunFilter::default(),
            &listing(Listed::Runs, Default::default()),
        )
        .unwrap();
    assert_eq!(run_names(&all), vec!["r4", "r3", "r2", "r1", "r0"]);

    let pages = listing(
        Listed::Runs,
        ListRequest {
            limit: 2,
            ..Default::default()
        },
    );
    let first = store.list_runs(&RunFilter::default(), &pages).unwrap();
    let token = pages.next_token(first.len(), first.last().map(|(_, a)| a));
    let next = listing(
        Listed::Runs,
        ListRequest {
            limit: 2,
            token,
            ..Default::default()
        },
    );
    let second = store.list_runs(&RunFilter::default(), &next).unwrap();
    assert_eq!(run_names(&second), vec!["r2", "r1"]);

    let other_project = RunFilter {
        project: Some("elsewhere".into()),
        ..Default::default()
    };
    assert!(store
        .list_runs(&other_project, &listing(Listed::Runs, Default::default()))
        .unwrap()
        .is_empty());
    let by_task = RunFilter {
        task_name: Some("t".into()),
        task_version: Some("v1".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_runs(&by_task, &listing(Listed::Runs, Default::default()))
            .unwrap()
            .len(),
        5
    );

    let run = run_key("r0");
    for i in 0..3 {
        store
            .insert_action(
                &new_action(&run, &format!("c{i}"), Some("a0"), ActionKind::Task),
                2,
            )
            .unwrap();
    }
    let every = listing(Listed::Actions, Default::default());
    let names: Vec<String> = store
        .list_actions(&run, &every)
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, vec!["a0", "c0", "c1", "c2"]);
}

#[test]
fn listing_filters_and_sorts_in_sql() {
    let (_dir, store) = open();
    let run = run_key("r");
    // Created at 1 (a0), then c0..c3 at 10, 20, 30, 40 ms.
    create(&store, "r");
    for (i, phase) in [
        ActionPhase::Succeeded,
        ActionPhase::Failed,
        ActionPhase::Succeeded,
        ActionPhase::Running,
    ]
    .into_iter()
    .enumerate()
    {
        let mut action = new_action(&run, &format!("c{i}"), Some("a0"), ActionKind::Task);
        action.phase = phase;
        action.task_name = format!("task{}", i % 2);
        store.insert_action(&action, 10 * (i as i64 + 1)).unwrap();
    }
    let mut grandchild = new_action(&run, "g0", Some("c3"), ActionKind::Task);
    grandchild.ended_ms = Some(1_000);
    store.insert_action(&grandchild, 50).unwrap();

    let names = |request: ListRequest| -> Vec<String> {
        store
            .list_actions(&run, &listing(Listed::Actions, request))
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect()
    };
    let filtered = |filters: Vec<Filter>| {
        names(ListRequest {
            filters,
            ..Default::default()
        })
    };
    assert_eq!(
        filtered(vec![filter("phase", Function::Equal, &["5"])]),
        ["c0", "c2"]
    );
    assert_eq!(
        filtered(vec![filter("phase", Function::ValueIn, &["FAILED", "4"])]),
        ["c1", "c3"]
    );
    assert_eq!(
        filtered(vec![filter("parent_name", Function::Equal, &["a0"])]),
        ["c0", "c1", "c2", "c3"]
    );
    assert_eq!(
        filtered(vec![filter("parent_name", Function::Equal, &[""])]),
        ["a0"]
    );
    assert_eq!(
        filtered(vec![
            filter("task_name", Function::Equal, &["task1"]),
            filter("phase", Function::NotEqual, &["RUNNING"]),
        ]),
        ["c1"]
    );
    assert_eq!(
        filtered(vec![filter(
            "task_name",
            Function::ContainsCaseInsensitive,
            &["TASK0"]
        )]),
        ["c0", "c2"]
    );
    // 0.020 s is c1's creation; 0.0305 s lies between c2 and c3.
    assert_eq!(
        filtered(vec![
            filter(
                "created_at",
                Function::GreaterThanOrEqual,
                &["1970-01-01T00:00:00.020+00:00"]
            ),
            filter(
                "created_at",
                Function::LessThan,
                &["1970-01-01T00:00:00.0305+00:00"]
            ),
        ]),
        ["c1", "c2"]
    );
    assert_eq!(
        filtered(vec![filter(
            "updated_at",
            Function::GreaterThan,
            &["1970-01-01T00:00:00.5+00:00"]
        )]),
        ["g0"]
    );

    let sorted = |key: &str, direction: Direction, limit: u32, token: String| ListRequest {
        limit,
        token,
        sort_by_fields: vec![Sort {
            key: key.into(),
            direction: direction as i32,
        }],
        ..Default::default()
    };
    assert_eq!(
        names(sorted(
            "created_at",
            Direction::Descending,
            0,
            String::new()
        )),
        ["g0", "c3", "c2", "c1", "c0", "a0"]
    );
    assert_eq!(
        names(sorted(
            "updated_at",
            Direction::Descending,
            0,
            String::new()
        )),
        ["g0", "c3", "c2", "c1", "c0", "a0"]
    );
    // Phase ties (two SUCCEEDED, two QUEUED) are broken by creation order.
    assert_eq!(
        names(sorted("phase", Direction::Ascending, 0, String::new())),
        ["a0", "g0", "c3", "c0", "c2", "c1"]
    );

    // Paging by phase, 2 at a time, sees every action once, in order.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let query = listing(
            Listed::Actions,
            sorted("phase", Direction::Descending, 2, token),
        );
        let page = store.list_actions(&run, &query).unwrap();
        seen.extend(page.iter().map(|a| a.name.clone()));
        token = query.next_token(page.len(), page.last());
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["c1", "c2", "c0", "c3", "g0", "a0"]);
}

#[test]
fn label_filters_still_fill_pages() {
    use flyteidl2::flyteidl::task::{Labels, RunSpec};
    use prost::Message;

    let (_dir, store) = open();
    for i in 0..7 {
        let run = run_key(&format!("r{i}"));
        let spec = RunSpec {
            labels: Some(Labels {
                values: [("team".to_string(), format!("t{}", i % 3))].into(),
            }),
            ..Default::default()
        };
        store
            .create_run(
                Some(&spec.encode_to_vec()),
                None,
                &new_action(&run, "a0", None, ActionKind::Task),
                i,
            )
            .unwrap();
    }
    let request = |token: String| ListRequest {
        limit: 2,
        token,
        filters: vec![filter("labels.team", Function::Equal, &["t0"])],
        sort_by_fields: vec![Sort {
            key: "created_at".into(),
            direction: Direction::Ascending as i32,
        }],
        ..Default::default()
    };
    let first_query = listing(Listed::Runs, request(String::new()));
    let first = store
        .list_runs(&RunFilter::default(), &first_query)
        .unwrap();
    assert_eq!(run_names(&first), ["r0", "r3"]);
    let token = first_query.next_token(first.len(), first.last().map(|(_, a)| a));
    let second = store
        .list_runs(
            &RunFilter::default(),
            &listing(Listed::Runs, request(token)),
        )
        .unwrap();
    assert_eq!(run_names(&second), ["r6"]);
    let nobody = listing(
        Listed::Runs,
        ListRequest {
            filters: vec![filter("created_by", Function::Equal, &["someone-else"])],
            ..Default::default()
        },
    );
    assert!(store
        .list_runs(&RunFilter::default(), &nobody)
        .unwrap()
        .is_empty());
}

#[test]
fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.db");
    {
        let store = Store::open(&path).unwrap();
        let root = create(&store, "r1");
        store.start_attempt(root.seq, 1, "/l1", 10).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let root = store.action(&run_key("r1"), "a0").unwrap().unwrap();
    assert_eq!(root.phase, ActionPhase::Running);
    assert_eq!(root.attempts, 1);
}

#[test]
fn refuses_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::NewerSchema(99))
    ));
}

#[test]
fn cache_entries_are_kept_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("backend.db")).unwrap();
    assert_eq!(store.cache_get("k", None).unwrap(), None);
    store.cache_put("k", "t", "file:///a/", 1).unwrap();
    assert_eq!(
        store.cache_get("k", None).unwrap().as_deref(),
        Some("file:///a/")
    );
    store.cache_put("k", "t", "file:///b/", 2).unwrap();
    assert_eq!(
        store.cache_get("k", None).unwrap().as_deref(),
        Some("file:///b/")
    );
    // Recorded at 2: too old for a caller that takes entries from 3 on.
    assert_eq!(
        store.cache_get("k", Some(2)).unwrap().as_deref(),
        Some("file:///b/")
    );
    assert_eq!(store.cache_get("k", Some(3)).unwrap(), None);
    drop(store);
    let reopened = Store::open(&dir.path().join("backend.db")).unwrap();
    assert_eq!(
        reopened.cache_get("k", None).unwrap().as_deref(),
        Some("file:///b/")
    );
}

#[test]
fn a_version_1_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.db");
    {
        // Version 1: no cache table, no actions.cache_hit column.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL,
                 project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL, run_spec BLOB,
                 created_ms INTEGER NOT NULL, UNIQUE (org, project, domain, name));
             CREATE TABLE actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL,
                 project TEXT NOT NULL, domain TEXT NOT NULL, run TEXT NOT NULL, name TEXT NOT NULL,
                 parent TEXT, grp TEXT NOT NULL, kind INTEGER NOT NULL, spec BLOB NOT NULL,
                 task_name TEXT NOT NULL, task_version TEXT NOT NULL, input_uri TEXT NOT NULL,
                 run_output_base TEXT NOT NULL, phase INTEGER NOT NULL, attempts INTEGER NOT NULL,
                 system_retries INTEGER NOT NULL DEFAULT 0, error BLOB, output_uri TEXT,
                 abort_reason TEXT, created_ms INTEGER NOT NULL, started_ms INTEGER,
                 ended_ms INTEGER, pid INTEGER, proc_start INTEGER,
                 version INTEGER NOT NULL DEFAULT 0, UNIQUE (org, project, domain, run, name));
             CREATE TABLE attempts (action_seq INTEGER NOT NULL REFERENCES actions (seq),
                 attempt INTEGER NOT NULL, phase INTEGER NOT NULL, started_ms INTEGER NOT NULL,
                 ended_ms INTEGER, error BLOB, output_uri TEXT, log_path TEXT NOT NULL,
                 PRIMARY KEY (action_seq, attempt));
             INSERT INTO runs (org, project, domain, name, created_ms) VALUES ('', 'p', 'd', 'r', 1);
             INSERT INTO actions (org, project, domain, run, name, grp, kind, spec, task_name,
                 task_version, input_uri, run_output_base, phase, attempts, created_ms)
             VALUES ('', 'p', 'd', 'r', 'a0', '', 1, x'', 't', 'v', 'file:///in.pb',
                 'file:///base/', 1, 0, 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let action = store.action(&run_key("r"), "a0").unwrap().unwrap();
    assert_eq!(action.task_name, "t");
    assert!(!action.cache_hit);
    assert!(store.run(&run_key("r")).unwrap().unwrap().trigger.is_none());
    store.cache_put("k", "t", "file:///o/", 1).unwrap();
    assert_eq!(
        store.cache_get("k", None).unwrap().as_deref(),
        Some("file:///o/")
    );
}

#[test]
fn conditions_wait_paused_and_end_once() {
    let (_dir, store) = open();
    create(&store, "r0");
    create(&store, "r1");
    let run = run_key("r0");
    let mut waiting = new_action(&run, "c0", Some("a0"), ActionKind::Condition);
    waiting.phase = ActionPhase::Paused;
    let inserted = store.insert_action(&waiting, 2).unwrap().unwrap();
    assert_eq!(inserted.kind, ActionKind::Condition);
    assert_eq!(inserted.value, None);
    store
        .insert_action(&new_action(&run, "t0", Some("a0"), ActionKind::Task), 2)
        .unwrap();

    // Listed by type, and the run shows among those with a paused action.
    let conditions = listing(
        Listed::Actions,
        ListRequest {
            filters: vec![filter("action_type", Function::Equal, &["3"])],
            ..Default::default()
        },
    );
    let names: Vec<String> = store
        .list_actions(&run, &conditions)
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, vec!["c0"]);
    let by_name = listing(
        Listed::Actions,
        ListRequest {
            filters: vec![filter("action_type", Function::Equal, &["task"])],
            ..Default::default()
        },
    );
    assert_eq!(store.list_actions(&run, &by_name).unwrap().len(), 2);
    let paused = RunFilter {
        paused_only: true,
        ..Default::default()
    };
    let every_run = listing(Listed::Runs, Default::default());
    assert_eq!(
        run_names(&store.list_runs(&paused, &every_run).unwrap()),
        vec!["r0"]
    );

    let value = b"signalled".to_vec();
    let (ended, changed) = store
        .end_condition(inserted.seq, ConditionEnd::Signalled(&value), 9)
        .unwrap()
        .unwrap();
    assert!(changed);
    assert_eq!(ended.phase, ActionPhase::Succeeded);
    assert_eq!(ended.value.as_deref(), Some(value.as_slice()));
    assert_eq!(ended.ended_ms, Some(9));
    // Ended: a timeout (or another signal) changes nothing and hands back what is stored.
    let (again, changed) = store
        .end_condition(inserted.seq, ConditionEnd::TimedOut(b"late"), 10)
        .unwrap()
        .unwrap();
    assert!(!changed);
    assert_eq!(again.phase, ActionPhase::Succeeded);
    assert_eq!(again.value.as_deref(), Some(value.as_slice()));
    assert!(store.list_runs(&paused, &every_run).unwrap().is_empty());

    // A task's record never carries a value, even where a local run keeps outputs inline.
    let task = store.action(&run, "t0").unwrap().unwrap();
    assert_eq!(task.value, None);
    assert!(store
        .end_condition(999, ConditionEnd::Signalled(&value), 1)
        .unwrap()
        .is_none());
}
