"use strict";
// The runs list and the run page, read from /api/ui. The view follows the path:
// /v2/runs, or /v2/runs/project/<p>/domain/<d>/<run>.

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT", "RECOVERED"]);
const app = document.getElementById("app");
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function phase(p) { return el("span", { class: `phase ${p}`, "data-phase": p }, p.replace(/_/g, " ").toLowerCase()); }

function when(ms) { return ms ? new Date(ms).toLocaleString() : ""; }

function duration(start, end) {
  if (!start) return "";
  const s = ((end || Date.now()) - start) / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} m`;
}

// replaceChildren without the absent parts (it would print "null").
function put(node, ...children) { node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined)); }

function schedule(fn, ms) { clearTimeout(timer); timer = setTimeout(fn, ms); }

// -- the runs list -------------------------------------------------------------------------

async function showRuns() {
  const params = new URLSearchParams(location.search);
  document.getElementById("crumbs").textContent = "runs";
  const form = el("form", { class: "filters", onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    history.pushState(null, "", `/v2/runs?${q}`);
    route();
  } },
    el("select", { name: "phase" }, el("option", { value: "" }, "any phase"),
      ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"].map((p) =>
        el("option", { value: p, selected: params.get("phase") === p }, p.toLowerCase()))),
    el("input", { name: "project", placeholder: "project", value: params.get("project") || "" }),
    el("input", { name: "domain", placeholder: "domain", value: params.get("domain") || "" }),
    el("input", { name: "task", placeholder: "task", value: params.get("task") || "" }),
    el("button", { type: "submit" }, "Filter"));
  const api = new URLSearchParams(params);
  let data;
  try { data = await getJSON(`/api/ui/runs?${api}`); }
  catch (e) { put(app, form, el("p", { class: "error" }, e.message)); return schedule(route, 3000); }
  const rows = data.runs.map((r) => el("tr", { "data-run": r.name },
    el("td", {}, el("a", { href: runPath(r) }, r.name)),
    el("td", {}, r.task), el("td", {}, phase(r.phase)),
    el("td", {}, `${r.project}/${r.domain}`), el("td", {}, when(r.created_ms)),
    el("td", {}, duration(r.started_ms || r.created_ms, r.ended_ms))));
  const next = data.next ? el("a", { href: `/v2/runs?${new URLSearchParams({ ...Object.fromEntries(params), token: data.next })}`, id: "next" }, "Older runs →") : null;
  put(app, form,
    rows.length ? el("table", { id: "runs" }, el("thead", {}, el("tr", {}, ["Run", "Task", "Phase", "Project/domain", "Created", "Duration"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "muted", id: "no-runs" }, "No runs match."),
    next);
  schedule(route, 3000);
}

function runPath(r) { return `/v2/runs/project/${encodeURIComponent(r.project)}/domain/${encodeURIComponent(r.domain)}/${encodeURIComponent(r.name)}`; }

// -- one run -------------------------------------------------------------------------------

const state = { selected: null, log: { key: null, offset: 0, text: "" } };

async function showRun(project, domain, name) {
  const base = `/api/ui/runs/${encodeURIComponent(project)}/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`;
  put(document.getElementById("crumbs"), el("a", { href: "/v2/runs" }, "runs"), ` / ${name}`);
  let run;
  try { run = await getJSON(base); }
  catch (e) { put(app, el("p", { class: "error", id: "run-error" }, e.message)); return schedule(route, 3000); }
  const root = run.actions.find((a) => a.name === "a0") || run.actions[0];
  state.selected = state.selected || new URLSearchParams(location.search).get("action");
  if (!state.selected || !run.actions.some((a) => a.name === state.selected)) state.selected = root ? root.name : null;
  const done = root && TERMINAL.has(root.phase);
  const head = el("section", { class: "summary" },
    el("h1", {}, name, " ", root ? phase(root.phase) : null),
    el("p", { class: "counts", id: "counts" }, Object.entries(run.counts).map(([p, n]) => el("span", {}, `${p.toLowerCase()}: ${n}`))),
    el("p", { class: "muted" }, root ? `${root.task} · started ${when(root.started_ms || root.created_ms)} · ${duration(root.started_ms || root.created_ms, root.ended_ms)}` : ""),
    done ? null : el("button", { class: "danger", id: "abort", onclick: async () => {
      if (!confirm(`Abort run ${name}?`)) return;
      const r = await fetch(`${base}/abort`, { method: "POST", headers: { "x-flyte-ui": "1" } });
      if (!r.ok) alert((await r.json()).error);
      route();
    } }, "Abort run"));
  const tree = el("div", { class: "tree", id: "tree" }, renderTree(run.actions, root),
    run.truncated ? el("p", { class: "muted" }, "Only the first actions are shown; the counts above cover all.") : null);
  const detail = el("div", { class: "detail", id: "detail" }, el("p", { class: "muted" }, "Loading…"));
  put(app, head, el("div", { class: "run" }, tree, detail));
  if (state.selected) await showAction(base, state.selected, detail);
  schedule(route, done ? 5000 : 1000);
}

function renderTree(actions, root) {
  const children = new Map();
  for (const a of actions) {
    const key = a.parent || "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(a);
  }
  const start = root ? (root.started_ms || root.created_ms) : 0;
  const end = Math.max(Date.now(), ...actions.map((a) => a.ended_ms || 0));
  const span = Math.max(1, end - start);
  const out = [];
  const walk = (parent, depth) => {
    let group = null;
    for (const a of children.get(parent) || []) {
      if (a.group && a.group !== group) out.push(el("div", { class: "group", style: `padding-left:${depth * 14 + 8}px`, "data-group": a.group }, a.group));
      group = a.group;
      const left = (((a.started_ms || a.created_ms) - start) / span) * 100;
      const width = Math.max(0.5, (((a.ended_ms || Date.now()) - (a.started_ms || a.created_ms)) / span) * 100);
      out.push(el("div", { class: `node${a.name === state.selected ? " selected" : ""}`, "data-action": a.name, "data-phase": a.phase,
        style: `padding-left:${depth * 14 + 8}px`, onclick: () => {
          state.selected = a.name;
          history.replaceState(null, "", `${location.pathname}?action=${encodeURIComponent(a.name)}`);
          route();
        } },
        el("span", {}, a.task || a.name, el("span", { class: "tag" }, a.name),
          a.kind !== "task" ? el("span", { class: "tag" }, a.kind) : null,
          a.cache_hit ? el("span", { class: "tag", "data-cache-hit": "1" }, "cache hit") : null,
          a.attempts > 1 ? el("span", { class: "tag" }, `${a.attempts} attempts`) : null),
        el("span", {}, phase(a.phase), " ", el("span", { class: "tag" }, duration(a.started_ms, a.ended_ms))),
        el("div", { class: "bar" }, el("span", { style: `left:${left}%;width:${Math.min(100 - left, width)}%` }))));
      walk(a.name, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

function valueView(v) {
  if (v && typeof v === "object" && !Array.isArray(v) && ["file", "dir", "dataframe", "offloaded"].includes(v.type)) {
    const label = `${v.type}: ${v.uri.split("/").filter(Boolean).pop() || v.uri}`;
    return v.download ? el("a", { href: v.download, download: "", title: v.uri, "data-type": v.type }, label)
      : el("code", { title: v.uri, "data-type": v.type }, label);
  }
  return el("pre", { class: "value" }, JSON.stringify(v, null, 2));
}

function valuesTable(id, values) {
  if (!values) return el("p", { class: "muted", id }, "none");
  if (!values.length) return el("p", { class: "muted", id }, "none");
  return el("table", { id }, values.map((n) => el("tr", { "data-name": n.name }, el("th", {}, n.name), el("td", {}, valueView(n.value)))));
}

async function showAction(base, name, into) {
  let d;
  try { d = await getJSON(`${base}/actions/${encodeURIComponent(name)}`); }
  catch (e) { put(into, el("p", { class: "error" }, e.message)); return; }
  const a = d.action;
  const logKey = `${base}/${name}/${a.attempts}`;
  if (state.log.key !== logKey) state.log = { key: logKey, offset: 0, text: "" };
  const log = el("pre", { id: "log" }, state.log.text);
  put(into, 
    el("h2", {}, a.task || a.name, " ", phase(a.phase)),
    el("p", { class: "muted" }, `${a.name} · ${a.kind} · attempts ${a.attempts}${a.cache_hit ? " · cache hit" : ""} · ${duration(a.started_ms, a.ended_ms)}`),
    a.error && a.phase !== "ABORTED" ? el("div", { id: "error" }, el("h3", { class: "error" }, `${a.error.kind} error ${a.error.code || ""}`), el("pre", {}, a.error.message), d.traceback ? el("pre", { id: "traceback" }, d.traceback) : null) : null,
    a.abort_reason ? el("p", { id: "abort-reason" }, `aborted: ${a.abort_reason}`) : null,
    el("h3", {}, "Inputs"), valuesTable("inputs", d.inputs),
    el("h3", {}, "Outputs"), valuesTable("outputs", d.outputs),
    d.data_error ? el("p", { class: "error" }, d.data_error) : null,
    d.attempts.length > 1 ? el("div", {}, el("h3", {}, "Attempts"), el("table", { id: "attempts" }, d.attempts.map((t) =>
      el("tr", {}, el("td", {}, `#${t.attempt}`), el("td", {}, phase(t.phase)), el("td", {}, duration(t.started_ms, t.ended_ms)), el("td", { class: "error" }, t.error || ""))))) : null,
    el("h3", {}, "Log"), log,
    d.report ? el("div", {}, el("h3", {}, "Report"), el("iframe", { class: "report", id: "report", sandbox: "allow-scripts", src: `${base}/actions/${encodeURIComponent(name)}/report` })) : null);
  await followLog(`${base}/actions/${encodeURIComponent(name)}/log?attempt=${a.attempts}`, log);
}

async function followLog(url, pre) {
  const r = await fetch(`${url}&offset=${state.log.offset}`);
  if (!r.ok) return;
  const text = await r.text();
  state.log.text += text;
  state.log.offset += new TextEncoder().encode(text).length;
  pre.textContent = state.log.text || "(nothing written)";
  pre.scrollTop = pre.scrollHeight;
}

// -- routing -------------------------------------------------------------------------------

function route() {
  const m = location.pathname.match(/^\/v2\/runs\/project\/([^/]+)\/domain\/([^/]+)\/([^/]+)\/?$/);
  if (m) return showRun(...m.slice(1).map(decodeURIComponent));
  return showRuns();
}

window.addEventListener("popstate", route);
route();
