"""The web UI in a real browser (headless Chromium over the DevTools protocol): the runs list,
a run's action tree with groups, values, logs, errors with retries and a sandboxed report, live
updates of a running run, and aborting it from the page. Screenshots go to the test's temp dir."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import ui_wf
from browser import Browser

import flyte
from flyte.models import ActionPhase


@pytest.fixture
def browser():
    with Browser() as b:
        yield b


@pytest.fixture
def backend(backend_endpoint: str) -> str:
    flyte.init(endpoint=backend_endpoint, insecure=True)
    return f"http://{backend_endpoint}"


def _run(task, **inputs):
    return flyte.with_runcontext(mode="remote").run(task, **inputs)


def test_run_url_opens_the_run_page_with_tree_values_logs_and_report(
    backend: str, browser: Browser, tmp_path: Path
) -> None:
    done = _run(ui_wf.main, n=3).wait()
    assert done.phase == ActionPhase.SUCCEEDED
    failed = _run(ui_wf.main, n=2, fail=True).wait()
    assert failed.phase == ActionPhase.FAILED
    assert done.url.startswith(f"{backend}/v2/runs/project/")

    # The list, newest first, with phases.
    browser.open(f"{backend}/v2/runs")
    names = browser.wait_for(
        f"[...document.querySelectorAll('#runs tr[data-run]')].map(r => r.dataset.run)"
        f".filter(n => n === {json.dumps(done.name)} || n === {json.dumps(failed.name)}).length == 2 && "
        "[...document.querySelectorAll('#runs tr[data-run]')].map(r => r.dataset.run)"
    )
    assert names.index(failed.name) < names.index(done.name), "newest first"
    row_phase = browser.js(
        f"document.querySelector('#runs tr[data-run={json.dumps(failed.name)}] [data-phase]').dataset.phase"
    )
    assert row_phase == "FAILED"
    browser.screenshot(tmp_path / "runs.png")
    # Filtered by phase: only the failed one.
    browser.open(f"{backend}/v2/runs?phase=FAILED")
    browser.wait_for("!!document.querySelector('#runs')")
    shown = browser.js("[...document.querySelectorAll('#runs tr[data-run]')].map(r => r.dataset.run)")
    assert failed.name in shown and done.name not in shown

    # The run page: root, the group, its three children; the root's values.
    browser.open(done.url)
    browser.wait_for("document.querySelectorAll('.node[data-action]').length === 5")
    assert browser.js("document.querySelector('.group').textContent") == "squares"
    assert browser.js("document.querySelector('#inputs tr[data-name=n] pre').textContent") == "3"
    outputs = json.loads(browser.js("document.querySelector('#outputs tr[data-name=o0] pre').textContent"))
    assert outputs == {"0": 0, "1": 1, "2": 4}
    # A child: its log; the reporter: its dataclass input, its File as a download link, its report.
    browser.js("document.querySelector('.node[data-action]:nth-of-type(3)').click()")
    squares = browser.js(
        "[...document.querySelectorAll('.node')].filter(n => n.textContent.includes('ui_demo.square'))"
        ".map(n => n.dataset.action)"
    )
    assert len(squares) == 3
    browser.js(f"document.querySelector('.node[data-action={json.dumps(squares[0])}]').click()")
    assert "squaring" in browser.wait_for(
        "document.querySelector('#log') && document.querySelector('#log').textContent.includes('squaring') "
        "&& document.querySelector('#log').textContent"
    )
    browser.js(
        "[...document.querySelectorAll('.node')].find(n => n.textContent.includes('ui_demo.reporter')).click()"
    )
    browser.wait_for("!!document.querySelector('#report')")
    points = json.loads(browser.js("document.querySelector('#inputs tr[data-name=points] pre').textContent"))
    assert points == [{"label": f"p{i}", "x": i} for i in range(3)]
    link = browser.js("document.querySelector('#outputs a[data-type=file]').href")
    with urllib.request.urlopen(link) as response:
        assert response.read() == b"hello file"
    assert browser.js("document.querySelector('#report').getAttribute('sandbox')") == "allow-scripts"
    with urllib.request.urlopen(browser.js("document.querySelector('#report').src")) as response:
        assert "sandbox" in response.headers["content-security-policy"]
        assert b"3 points" in response.read()
    browser.screenshot(tmp_path / "run.png")

    # The failed run: the failing child's error and its two attempts.
    browser.open(failed.url)
    browser.wait_for(
        "[...document.querySelectorAll('.node')].some(n => n.textContent.includes('ui_demo.flaky'))"
    )
    browser.js(
        "[...document.querySelectorAll('.node')].find(n => n.textContent.includes('ui_demo.flaky')).click()"
    )
    assert "no luck with 1" in browser.wait_for(
        "document.querySelector('#error') && document.querySelector('#error').textContent"
    )
    assert browser.wait_for("document.querySelectorAll('#attempts tr').length") == 2
    # The user's traceback, from the failed attempt, under the error: it names the task's code.
    traceback = browser.wait_for(
        "document.querySelector('#traceback') && document.querySelector('#traceback').textContent"
    )
    assert traceback.startswith("Traceback (most recent call last):")
    assert "ui_wf.py" in traceback and "in flaky" in traceback and "ValueError: no luck with 1" in traceback
    assert "ValueError" in browser.wait_for(
        "document.querySelector('#log').textContent.includes('Traceback') && document.querySelector('#log').textContent"
    )
    browser.screenshot(tmp_path / "failed.png")


def test_map_groups_cache_hits_and_traces_in_the_tree(backend: str, browser: Browser, tmp_path: Path) -> None:
    done = _run(ui_wf.mapped, n=3).wait()
    assert done.phase == ActionPhase.SUCCEEDED
    browser.open(done.url)
    # The root, flyte.map's three calls under the map's group, the cached second call, the trace.
    browser.wait_for("document.querySelectorAll('.node[data-action]').length === 6")
    assert browser.js("[...document.querySelectorAll('.group')].map(g => g.dataset.group)") == ["map-doubled"]
    hits = browser.js("document.querySelectorAll('[data-cache-hit]').length")
    assert hits == 1
    kinds = browser.js(
        "[...document.querySelectorAll('.node')].filter(n => n.textContent.includes('summarize'))"
        ".map(n => n.textContent)"
    )
    assert len(kinds) == 1 and "trace" in kinds[0]
    browser.js(
        "[...document.querySelectorAll('.node')].find(n => n.textContent.includes('summarize')).click()"
    )
    outputs = browser.wait_for(
        "document.querySelector('#outputs pre') && document.querySelector('#outputs pre').textContent"
    )
    assert json.loads(outputs) == "4 values, total 6"
    # A trace's times are its own (when the call began and ended in the task's process).
    project, domain = done.pb2.action.id.run.project, done.pb2.action.id.run.domain
    with urllib.request.urlopen(f"{backend}/api/ui/runs/{project}/{domain}/{done.name}") as response:
        actions = json.loads(response.read())["actions"]
    trace = next(a for a in actions if a["kind"] == "trace")
    assert trace["started_ms"] <= trace["ended_ms"]
    browser.screenshot(tmp_path / "mapped.png")


def test_a_running_run_updates_live_and_aborts_from_the_page(
    backend: str, browser: Browser, tmp_path: Path
) -> None:
    run = _run(ui_wf.slow)
    browser.open(run.url)
    # Live, with no reload: the first nap appears and finishes, the second starts.
    browser.wait_for("document.querySelector('h1 [data-phase]').dataset.phase === 'RUNNING'", timeout=60)
    browser.wait_for(
        "document.querySelectorAll('.node[data-phase=SUCCEEDED]').length === 1 && "
        "document.querySelectorAll('.node[data-phase=RUNNING]').length === 2",
        timeout=60,
    )
    # The root's log follows: what it printed after the page opened shows up.
    browser.wait_for("document.querySelector('#log').textContent.includes('starting to sleep')", timeout=60)
    browser.screenshot(tmp_path / "running.png")
    browser.js("window.confirm = () => true; document.querySelector('#abort').click()")
    browser.wait_for("document.querySelector('h1 [data-phase]').dataset.phase === 'ABORTED'", timeout=60)
    assert browser.js("document.querySelector('#abort')") is None, "no abort button on an ended run"
    assert run.wait(quiet=True).phase == ActionPhase.ABORTED
    browser.screenshot(tmp_path / "aborted.png")


def test_abort_needs_the_page_and_errors_are_json(backend: str) -> None:
    run = _run(ui_wf.main, n=1).wait()
    api = f"{backend}/api/ui/runs/{run.pb2.action.id.run.project}/{run.pb2.action.id.run.domain}"
    # A plain POST (a form on another site could send one) is refused.
    request = urllib.request.Request(f"{api}/{run.name}/abort", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{api}/rnosuchrun")
    assert missing.value.code == 404
    assert "does not exist" in json.loads(missing.value.read())["error"]
    # The page itself is small and self-contained.
    weight = 0
    for path in ("/v2/runs", "/ui/app.js", "/ui/app.css"):
        with urllib.request.urlopen(f"{backend}{path}") as response:
            weight += len(response.read())
    assert weight < 64 * 1024


def test_a_local_run_links_to_the_page_of_the_data_dirs_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import local_backend

    data = tmp_path / "data"
    monkeypatch.setenv("FLYTE_DATA_DIR", str(data))
    flyte.init()
    # No backend for the data dir: the run's directory.
    alone = flyte.with_runcontext(mode="local").run(ui_wf.square, x=2)
    assert alone.url.startswith("file://")
    with local_backend.running(data) as endpoint:
        flyte.init()
        run = flyte.with_runcontext(mode="local").run(ui_wf.square, x=3)
        assert run.url == (
            f"http://{endpoint}/v2/runs/project/{run.pb2.action.id.run.project}"
            f"/domain/{run.pb2.action.id.run.domain}/{run.name}"
        )
        # The page's data: the local run as the backend recorded it, with its output.
        api = run.url.replace("/v2/runs/project/", "/api/ui/runs/").replace("/domain/", "/")
        with urllib.request.urlopen(api) as response:
            shown = json.loads(response.read())
        assert shown["name"] == run.name and shown["actions"][0]["phase"] == "SUCCEEDED"
