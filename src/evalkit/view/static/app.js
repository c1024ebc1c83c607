// evalkit view: a hash-routed page over the viewer's JSON API. No framework, no build step,
// nothing fetched from anywhere but this server. Every log value is shown as text (never HTML).
"use strict";

const PAGE_SIZE = 50;
const REFRESH_MS = 3000;
let refreshTimer = null;
let renderId = 0;

// ---- helpers --------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(node, ...children) {
  node.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const each of [].concat(value)) if (each !== "" && each !== undefined && each !== null) query.append(key, each);
  }
  const response = await fetch(`/api/${path}?${query}`, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

function go(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const each of [].concat(value)) if (each !== "" && each !== undefined && each !== null && each !== false) query.append(key, each);
  }
  const text = query.toString();
  location.hash = `#${path}${text ? "?" + text : ""}`;
}

function fmtNumber(value, digits = 3) {
  if (value === null || value === undefined) return "-";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(digits).replace(/\.?0+$/, "");
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m ${Math.round(seconds % 60)}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

function fmtTime(iso) {
  return iso ? iso.slice(0, 19).replace("T", " ") : "-";
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind || text}` }, text);
}

function headline(metrics) {
  const parts = [];
  for (const [scorer, values] of Object.entries(metrics || {})) {
    const first = Object.entries(values)[0];
    if (first) parts.push(`${scorer}/${first[0]} ${fmtNumber(first[1])}`);
  }
  return parts.join("  ") || "-";
}

function setCrumbs(...items) {
  const nav = document.getElementById("crumbs");
  fill(nav, ...items.flatMap((item, i) => [i ? el("span", {}, "›") : null,
    item.href ? el("a", { href: item.href }, item.text) : el("span", {}, item.text)]));
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function pretty(value) {
  return el("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

function showError(error) {
  fill(document.getElementById("app"), el("div", { class: "errorbox", id: "page-error" }, error.message || String(error)));
}

function every(ms, fn) {
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => { if (!document.hidden) fn(); }, ms);
}

function runHref(log) {
  return `#/run?log=${encodeURIComponent(log)}`;
}

// ---- runs -----------------------------------------------------------------------------

async function showRuns() {
  setCrumbs({ text: "runs" });
  const chosen = new Set();
  const app = document.getElementById("app");
  const compareButton = el("button", { class: "primary", id: "compare", disabled: true,
    onclick: () => go("/compare", { log: [...chosen] }) }, "Compare selected");
  const body = el("tbody");
  const table = el("table", { id: "runs" },
    el("thead", {}, el("tr", {}, ["", "started", "task", "model", "status", "metrics", "samples", "tokens", "duration", "log"].map((h) => el("th", {}, h)))),
    body);
  const heading = el("h1", {}, "Runs");
  fill(app, heading, el("div", { class: "toolbar" }, compareButton,
    el("span", { class: "muted" }, "tick two or more runs of one task to compare them")), table);

  async function load() {
    const data = await api("runs");
    heading.textContent = `Runs in ${data.log_dir} (${data.runs.length})`;
    fill(body, ...data.runs.map((run) => {
      const box = el("input", { type: "checkbox", "aria-label": `select ${run.log}`, checked: chosen.has(run.log),
        onclick: (event) => event.stopPropagation(),
        onchange: (event) => { event.target.checked ? chosen.add(run.log) : chosen.delete(run.log); compareButton.disabled = chosen.size < 2; } });
      const readable = run.status !== "unreadable";
      return el("tr", { class: readable ? "clickable" : "", "data-log": run.log, onclick: () => readable && go("/run", { log: run.log }) },
        el("td", {}, readable ? box : ""),
        el("td", { class: "num" }, fmtTime(run.started)),
        el("td", {}, run.task || "-"),
        el("td", {}, run.model || "-"),
        el("td", {}, badge(run.status), run.error ? el("div", { class: "muted" }, run.error.split("\n")[0].slice(0, 160)) : null),
        el("td", {}, headline(run.metrics)),
        el("td", { class: "num" }, run.samples === undefined ? "-" : `${fmtNumber(run.samples ?? 0)} / ${fmtNumber(run.total ?? null)}`),
        el("td", { class: "num" }, fmtNumber(run.tokens ?? null)),
        el("td", { class: "num" }, fmtDuration(run.duration ?? null)),
        el("td", { class: "muted" }, run.log));
    }));
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  }
  await load();
  every(REFRESH_MS, () => load().catch(showError));
}

// ---- one run --------------------------------------------------------------------------

const SAMPLE_COLUMNS = [
  { key: "id", label: "id", sort: "id" },
  { key: "epoch", label: "epoch", sort: "epoch", num: true },
  { key: "input", label: "input", text: true },
  { key: "target", label: "target", text: true },
  { key: "answer", label: "answer", text: true },
];
const TAIL_COLUMNS = [
  { key: "error", label: "error", sort: "error", text: true },
  { key: "retries", label: "retries", sort: "retries", num: true },
  { key: "total_tokens", label: "tokens", sort: "tokens", num: true },
  { key: "time", label: "time", sort: "time", num: true },
];

function metricCards(run) {
  const cards = [];
  for (const [scorer, metrics] of Object.entries(run.metrics || {})) {
    for (const [name, value] of Object.entries(metrics)) {
      cards.push(el("div", { class: "card metric" }, el("div", { class: "label" }, `${scorer} / ${name}`), el("div", { class: "value" }, fmtNumber(value))));
    }
  }
  cards.push(el("div", { class: "card" }, el("div", { class: "label" }, "samples"), el("div", { class: "value" }, `${fmtNumber(run.samples ?? 0)} / ${fmtNumber(run.total ?? null)}`)));
  cards.push(el("div", { class: "card" }, el("div", { class: "label" }, "errors"), el("div", { class: "value" }, fmtNumber(run.errors ?? null))));
  cards.push(el("div", { class: "card" }, el("div", { class: "label" }, "tokens"), el("div", { class: "value" }, fmtNumber(run.tokens ?? null))));
  cards.push(el("div", { class: "card" }, el("div", { class: "label" }, "duration"), el("div", { class: "value" }, fmtDuration(run.duration ?? null))));
  return el("div", { class: "cards" }, cards);
}

async function showRun(params) {
  const log = params.get("log");
  const state = { q: params.get("q") || "", errors: params.get("errors") || "", score: params.get("score") || "",
    limited: params.get("limited") || "", sort: params.get("sort") || "", desc: params.get("desc") || "", offset: Number(params.get("offset") || 0) };
  const navigate = (changes) => go("/run", { log, ...state, ...changes });
  setCrumbs({ text: "runs", href: "#/" }, { text: log });
  const app = document.getElementById("app");
  const started = performance.now();
  const run = await api("run", { log });
  const search = el("input", { type: "search", id: "search", placeholder: "search id, input, target, answer, transcript…", value: state.q });
  search.addEventListener("keydown", (event) => { if (event.key === "Enter") navigate({ q: search.value, offset: 0 }); });
  const errors = el("select", { id: "errors", onchange: (event) => navigate({ errors: event.target.value, offset: 0 }) },
    [["", "all samples"], ["only", "errors only"], ["none", "no errors"]].map(([value, label]) => el("option", { value, selected: state.errors === value }, label)));
  const scoreOptions = [el("option", { value: "" }, "any score")];
  for (const [scorer, values] of Object.entries(run.score_values || {})) {
    for (const [value, count] of values) {
      const key = `${scorer}=${value}`;
      scoreOptions.push(el("option", { value: key, selected: state.score === key }, `${scorer} = ${value} (${count.toLocaleString()})`));
    }
  }
  const score = el("select", { id: "score", onchange: (event) => navigate({ score: event.target.value, offset: 0 }) }, scoreOptions);
  const limited = el("label", {}, el("input", { type: "checkbox", id: "limited", checked: state.limited === "1",
    onchange: (event) => navigate({ limited: event.target.checked ? "1" : "", offset: 0 }) }), " ended by a limit");
  const columns = [...SAMPLE_COLUMNS, ...run.scorers.map((s) => ({ key: `score:${s}`, label: s, sort: `score:${s}`, score: s })), ...TAIL_COLUMNS];
  const head = el("tr", {}, columns.map((c) => el("th", {
    class: [c.sort ? "sortable" : "", state.sort === c.sort ? "sorted" : "", state.sort === c.sort && state.desc ? "desc" : ""].join(" "),
    onclick: c.sort ? () => navigate({ sort: c.sort, desc: state.sort === c.sort && !state.desc ? "1" : "", offset: 0 }) : null }, c.label)));
  const body = el("tbody");
  const pager = el("div", { class: "pager", id: "pager" });
  const problems = (run.problems || []).length ? el("div", { class: "errorbox" }, `Some lines were left out: ${run.problems.join("; ")}`) : null;
  fill(app, 
    el("h1", {}, `${run.task} · ${run.model} `, badge(run.status)),
    run.error ? el("div", { class: "errorbox" }, run.error) : null, problems,
    metricCards(run),
    el("details", { id: "settings" }, el("summary", {}, "settings"), el("div", { class: "kv" },
      Object.entries(run.settings).flatMap(([key, value]) => [el("div", { class: "k" }, key), pretty(value)]),
      el("div", { class: "k" }, "started"), el("div", {}, fmtTime(run.started)),
      el("div", { class: "k" }, "log"), el("div", {}, run.log))),
    el("div", { class: "toolbar" }, search, el("button", { onclick: () => navigate({ q: search.value, offset: 0 }) }, "Search"),
      errors, score, limited,
      (state.q || state.errors || state.score || state.limited) ? el("button", { onclick: () => go("/run", { log }) }, "Clear") : null),
    el("table", { id: "samples" }, el("thead", {}, head), body), pager);

  async function load() {
    const page = await api("samples", { log, q: state.q, errors: state.errors, score: state.score, limited: state.limited,
      sort: state.sort, desc: state.desc, offset: state.offset, size: PAGE_SIZE });
    fill(body, ...page.rows.map((row) => el("tr", { class: "clickable", "data-position": row.position,
      onclick: () => go("/sample", { log, position: row.position }) },
      columns.map((c) => {
        if (c.score) return el("td", {}, row.scores[c.score] === undefined ? "-" : badge(row.scores[c.score], row.scores[c.score]));
        if (c.key === "error" && row.limit) return el("td", {}, badge(`${row.limit} limit`, "P"), row.error ? ` ${row.error}` : "");
        const value = c.key === "error" ? (row.error || "") : row[c.key];
        return el("td", { class: c.num ? "num" : c.text ? "text" : "", title: c.text ? String(value ?? "") : null },
          c.key === "time" ? `${fmtNumber(value, 3)}s` : c.num ? fmtNumber(value) : String(value ?? ""));
      }))));
    if (!page.rows.length) fill(body, el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "No samples match.")));
    const last = Math.min(state.offset + PAGE_SIZE, page.total);
    fill(pager, 
      el("button", { id: "prev", disabled: state.offset === 0, onclick: () => navigate({ offset: Math.max(0, state.offset - PAGE_SIZE) }) }, "‹ prev"),
      el("span", { id: "range" }, page.total ? `${(state.offset + 1).toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}` : "0 of 0",
        page.total !== page.samples ? ` (filtered from ${page.samples.toLocaleString()})` : ""),
      el("button", { id: "next", disabled: last >= page.total, onclick: () => navigate({ offset: state.offset + PAGE_SIZE }) }, "next ›"));
    setStatus(`${page.samples.toLocaleString()} samples · first rows in ${Math.round(performance.now() - started)} ms`);
  }
  await load();
  if (run.status === "started") {
    every(REFRESH_MS, async () => {
      try {
        const now = await api("run", { log });
        if (now.status !== "started") render();  // finished: show the final metrics
        else await load();
      } catch (error) { showError(error); }
    });
  }
}

// ---- one sample -----------------------------------------------------------------------

function contentParts(content) {
  if (typeof content === "string") return [el("pre", { class: "part" }, content)];
  return (content || []).map((part) => {
    if (part.type === "text") return el("pre", { class: "part" }, part.text);
    if (part.type === "reasoning") {
      return el("details", { class: "part reasoning", open: true }, el("summary", {}, part.redacted ? "reasoning (redacted)" : "reasoning"),
        el("pre", {}, part.redacted ? "(redacted by the provider)" : part.reasoning));
    }
    if (part.type === "image") {
      const image = String(part.image || "");
      return image.startsWith("data:image/")
        ? el("img", { class: "part content", src: image, alt: "image" })
        : el("div", { class: "part muted" }, `[image: ${image.slice(0, 200)}]`);
    }
    return pretty(part);
  });
}

function messageView(message) {
  const failed = message.role === "tool" && message.error;
  const title = message.role === "tool" ? `tool result · ${message.function || ""}${message.tool_call_id ? ` (${message.tool_call_id})` : ""}` : message.role;
  return el("div", { class: `message ${message.role}${failed ? " failed" : ""}` },
    el("div", { class: "role" }, title),
    el("div", { class: "body" },
      failed ? el("div", { class: "errorbox" }, `${message.error.type}: ${message.error.message}`) : null,
      contentParts(message.content),
      (message.tool_calls || []).map((call) => el("div", { class: "toolcall" },
        el("div", {}, el("span", { class: "fn" }, `${call.function}(…)`), el("span", { class: "muted" }, `  ${call.id || ""}`)),
        pretty(call.arguments),
        call.parse_error ? el("div", { class: "errorbox" }, `arguments did not parse: ${call.parse_error}`) : null))));
}

function scoreView(name, score) {
  return el("div", { class: "card score" },
    el("div", { class: "label" }, name),
    el("div", { class: "value" }, badge(typeof score.value === "object" ? JSON.stringify(score.value) : String(score.value), String(score.value))),
    score.answer !== undefined && score.answer !== null ? el("div", {}, el("span", { class: "muted" }, "answer: "), String(score.answer)) : null,
    score.explanation ? el("div", {}, el("span", { class: "muted" }, "explanation: "), el("pre", {}, score.explanation)) : null,
    score.metadata ? el("details", {}, el("summary", {}, "metadata"), pretty(score.metadata)) : null);
}

async function showSample(params) {
  const log = params.get("log");
  const position = Number(params.get("position") || 0);
  const data = await api("sample", { log, position });
  const s = data.record;
  setCrumbs({ text: "runs", href: "#/" }, { text: log, href: runHref(log) }, { text: `sample ${s.id} · epoch ${s.epoch}` });
  if (data.problem) {
    fill(document.getElementById("app"), el("h1", { id: "sample-title" }, `Sample ${s.id} · epoch ${s.epoch}`),
      el("div", { class: "errorbox", id: "sample-problem" }, `This line of the log is damaged (${data.problem}); shown as written:`), pretty(s));
    return;
  }
  const usage = s.usage || {};
  const info = [["target", Array.isArray(s.target) ? s.target.join(" | ") : s.target], ["time", `${fmtNumber(s.time, 3)}s`],
    ["tokens", Object.entries(usage).map(([k, v]) => `${k.replace("_tokens", "")} ${fmtNumber(v)}`).join(" · ") || "-"],
    ["stop reason", (s.output || {}).stop_reason || "-"], ["limit", s.limit ? `${s.limit.type} limit (${s.limit.limit})` : "-"]];
  fill(document.getElementById("app"), 
    el("div", { class: "pager" },
      el("button", { id: "prev-sample", disabled: position === 0, onclick: () => go("/sample", { log, position: position - 1 }) }, "‹ previous"),
      el("span", {}, `${position + 1} of ${data.count}`),
      el("button", { id: "next-sample", disabled: position + 1 >= data.count, onclick: () => go("/sample", { log, position: position + 1 }) }, "next ›")),
    el("h1", { id: "sample-title" }, `Sample ${s.id} · epoch ${s.epoch}`),
    s.error ? el("div", { class: "errorbox", id: "sample-error" }, el("pre", {}, s.error)) : null,
    el("h2", {}, "Scores"),
    el("div", { class: "cards", id: "scores" }, Object.entries(s.scores || {}).map(([name, score]) => scoreView(name, score))),
    el("div", { class: "kv" }, info.flatMap(([k, v]) => [el("div", { class: "k" }, k), el("div", {}, String(v))])),
    el("h2", {}, "Transcript"),
    el("div", { id: "transcript" }, (s.messages || []).map(messageView)),
    s.retries && s.retries.length ? [el("h2", {}, `Retries (${s.retries.length})`), pretty(s.retries)] : null,
    s.metadata ? [el("h2", {}, "Metadata"), pretty(s.metadata)] : null,
    s.state_metadata ? [el("h2", {}, "Metadata when the sample ended"), pretty(s.state_metadata)] : null,
    el("details", {}, el("summary", {}, "raw record"), pretty(s)));
  setStatus("");
}

// ---- compare --------------------------------------------------------------------------

async function showCompare(params) {
  const logs = params.getAll("log");
  const offset = Number(params.get("offset") || 0);
  setCrumbs({ text: "runs", href: "#/" }, { text: `compare ${logs.length} runs` });
  const data = await api("compare", { log: logs, offset, size: PAGE_SIZE });
  const runHeads = data.runs.map((run, i) => el("th", {}, `[${i + 1}] ${run.model}`));
  const metricRows = data.metrics.map((m) => {
    const first = m.values[0];
    return el("tr", {}, el("td", {}, `${m.scorer} / ${m.metric}`), m.values.map((v, i) => {
      const delta = i && typeof v === "number" && typeof first === "number" ? v - first : null;
      return el("td", { class: "num" }, fmtNumber(v), delta ? el("span", { class: delta > 0 ? "diff-up" : "diff-down" }, ` (${delta > 0 ? "+" : ""}${fmtNumber(delta)})`) : null);
    }));
  });
  const sampleRows = data.rows.map((row) => el("tr", {},
    el("td", {}, String(row.id)), el("td", { class: "num" }, row.epoch),
    el("td", { class: "text", title: row.input }, row.input), el("td", { class: "text" }, row.target),
    row.scores.map((scores, i) => el("td", {}, scores === null ? el("span", { class: "muted" }, "missing")
      : el("a", { href: `#/sample?log=${encodeURIComponent(logs[i])}&position=${row.positions[i]}` },
        Object.entries(scores).map(([name, value]) => [badge(value, value), Object.keys(scores).length > 1 ? ` ${name} ` : " "]))))));
  const last = Math.min(offset + PAGE_SIZE, data.total);
  fill(document.getElementById("app"), 
    el("h1", {}, `Compare · ${data.runs[0].task}`),
    el("table", { id: "compare-runs" }, el("thead", {}, el("tr", {}, el("th", {}, "run"), el("th", {}, "model"), el("th", {}, "status"), el("th", {}, "samples"), el("th", {}, "log"))),
      el("tbody", {}, data.runs.map((run, i) => el("tr", { class: "clickable", onclick: () => go("/run", { log: run.log }) },
        el("td", {}, `[${i + 1}]`), el("td", {}, run.model), el("td", {}, badge(run.status)), el("td", { class: "num" }, fmtNumber(run.samples ?? 0)), el("td", { class: "muted" }, run.log))))),
    el("h2", {}, "Metrics"),
    el("table", { id: "compare-metrics" }, el("thead", {}, el("tr", {}, el("th", {}, "metric"), runHeads)), el("tbody", {}, metricRows)),
    el("h2", { id: "differing-title" }, data.total === 1 ? "1 sample scores differently" : `${data.total.toLocaleString()} samples score differently`),
    el("table", { id: "compare-samples" }, el("thead", {}, el("tr", {}, el("th", {}, "id"), el("th", {}, "epoch"), el("th", {}, "input"), el("th", {}, "target"), runHeads.map((h) => h.cloneNode(true)))),
      el("tbody", {}, sampleRows)),
    el("div", { class: "pager" },
      el("button", { disabled: offset === 0, onclick: () => go("/compare", { log: logs, offset: Math.max(0, offset - PAGE_SIZE) }) }, "‹ prev"),
      el("span", {}, data.total ? `${offset + 1}–${last} of ${data.total}` : "none"),
      el("button", { disabled: last >= data.total, onclick: () => go("/compare", { log: logs, offset: offset + PAGE_SIZE }) }, "next ›")));
  setStatus("");
}

// ---- router ---------------------------------------------------------------------------

async function render() {
  clearInterval(refreshTimer);
  const id = ++renderId;
  const { path, params } = route();
  const views = { "/": showRuns, "/run": showRun, "/sample": showSample, "/compare": showCompare };
  try {
    await (views[path] || showRuns)(params);
  } catch (error) {
    if (id === renderId) showError(error);
  }
}

if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname + location.hash);  // the cookie holds it now
}
window.addEventListener("hashchange", render);
render();
