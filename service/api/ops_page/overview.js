"use strict";
// The overview: counts, health, the archive, charts over time, processing and failing jobs,
// and the job list with its search and filters.

async function refreshOverview() {
  const [stats, processing, failed, timedOut] = await Promise.all([
    api("/v1/stats"),
    api("/v1/jobs?status=processing&limit=50"),
    api("/v1/jobs?status=failed&limit=20"),
    api("/v1/jobs?status=timed_out&limit=20"),
  ]);
  const counts = document.getElementById("counts");
  counts.replaceChildren(...Object.entries(stats.counts).map(([s, n]) =>
    card(s, n, s === "failed" || s === "timed_out" ? (n ? "bad" : "") : "")));
  const provider = (stats.provider || {}).state || "closed";
  document.getElementById("health").replaceChildren(
    card("overdue", stats.overdue, stats.overdue ? "warn" : ""),
    card("oldest processing (s)", stats.oldest_processing_seconds),
    card("completed last hour", stats.completed_last_hour),
    card("p50 to success (s)", stats.p50_seconds),
    card("p95 to success (s)", stats.p95_seconds),
    card("callbacks dead", stats.callbacks.dead, stats.callbacks.dead ? "bad" : ""),
    card("callbacks failing", stats.callbacks.failing, stats.callbacks.failing ? "warn" : ""),
    card("provider", provider, provider === "open" ? "bad" : provider === "half_open" ? "warn" : ""));
  const archive = stats.archive || {};
  const unarchived = Object.entries(archive.failures || {});
  document.getElementById("archive").replaceChildren(
    card("archive", archive.enabled ? "on" : "off"),
    card("archives pending", archive.pending, archive.pending ? "warn" : ""),
    card("oldest pending archive (s)", archive.oldest_pending_seconds,
      archive.oldest_pending_seconds > 3600 ? "bad" : ""),
    card("outputs stored", archive.stored_outputs),
    card("bytes stored", archive.stored_bytes),
    ...unarchived.map(([reason, n]) => card("not archived: " + reason, n, "bad")));
  const now = Date.now();
  const rows = processing.items
    .map(j => ({ j, late: j.eta_at && Date.parse(j.eta_at) < now }))
    .sort((a, b) => (b.late - a.late) || (Date.parse(a.j.eta_at || 0) - Date.parse(b.j.eta_at || 0)));
  document.getElementById("processing").replaceChildren(...rows.map(({ j, late }) =>
    jobRow(j, j.id, (j.request.prompt || "").slice(0, 40), ago(j.submitted_at), ago(j.eta_at),
      j.polls, j.webhooks, late ? "OVERDUE" : "")));
  const failures = failed.items.concat(timedOut.items)
    .sort((a, b) => Date.parse(b.completed_at) - Date.parse(a.completed_at)).slice(0, 20);
  document.getElementById("failures").replaceChildren(...failures.map(j =>
    jobRow(j, j.id, j.status, ago(j.completed_at), j.error ? j.error.code : "",
      j.error ? j.error.message : "")));
  await Promise.all([refreshCharts(), refreshJobs()]);
}

// Figures over time (GET /v1/stats/series), drawn with the vendored uPlot.
const CHARTS = [
  { id: "throughput", title: "Jobs per step", series: [
    ["created", p => p.created], ["succeeded", p => p.finished.succeeded],
    ["failed", p => p.finished.failed], ["timed out", p => p.finished.timed_out],
    ["canceled", p => p.finished.canceled]] },
  { id: "to-result", title: "Creation to success (s)", series: [
    ["p50", p => p.to_result_p50_seconds], ["p95", p => p.to_result_p95_seconds]] },
  { id: "delivery", title: "Results: webhook or poll", series: [
    ["webhook", p => p.results.webhook], ["poll", p => p.results.poll]] },
  { id: "lateness", title: "Webhook lateness after eta (s)", series: [
    ["p50", p => p.lateness_p50_seconds], ["p95", p => p.lateness_p95_seconds]] },
  { id: "provider", title: "Provider errors and 429s", series: [
    ["429", p => p.rate_limited],
    ["errors", p => Object.entries(p.provider_errors)
      .filter(([kind]) => kind !== "rate_limited").reduce((sum, [, n]) => sum + n, 0)]] },
  { id: "callbacks", title: "Callback attempts", series: [
    ["delivered", p => p.callbacks.delivered, "#16a34a"],
    ["failing", p => p.callbacks.failing, "#d97706"], ["dead", p => p.callbacks.dead, "#dc2626"]] },
  { id: "archive", title: "Output archive", series: [
    ["stored", p => p.archived.stored, "#16a34a"], ["not stored", p => p.archived.not_stored, "#dc2626"],
    ["backlog (peak)", p => p.archive_backlog, "#6b7280"]] },
];
const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#d97706", "#6b7280"];
let chartWindow = "1h";
const charts = {};

function drawCharts(data) {
  const xs = data.points.map(p => Date.parse(p.at) / 1000);
  const holder = document.getElementById("charts");
  for (const c of CHARTS) {
    const columns = [xs, ...c.series.map(([, pick]) => data.points.map(p => pick(p) ?? null))];
    let box = document.getElementById("chart-" + c.id);
    if (!box) {
      box = el("div", { class: "chart", id: "chart-" + c.id });
      holder.append(box);
    }
    box.dataset.window = data.window;
    box.dataset.total = columns.slice(1)
      .map(col => col.reduce((sum, v) => sum + (v || 0), 0)).join(",");
    const chart = charts[c.id];
    if (chart && chart.windowName === data.window) { chart.setData(columns); continue; }
    if (chart) chart.destroy();
    box.replaceChildren();
    const made = new uPlot({
      title: c.title, width: 440, height: 180,
      // points too: a percentile often has a value in one step and none beside it
      series: [{}, ...c.series.map(([label, , color], i) =>
        ({ label, stroke: color || COLORS[i % COLORS.length], width: 2, points: { show: true, size: 4 } }))],
    }, columns, box);
    made.windowName = data.window;
    charts[c.id] = made;
  }
  document.getElementById("usage").replaceChildren(...data.usage.slice().reverse().map(u =>
    el("tr", {}, el("td", {}, u.day), el("td", {}, u.client), el("td", {}, u.generations))));
}

async function refreshCharts() {
  drawCharts(await api("/v1/stats/series?window=" + chartWindow));
}

document.querySelectorAll("#windows button").forEach(button => button.addEventListener("click", () => {
  chartWindow = button.dataset.window;
  document.querySelectorAll("#windows button").forEach(b => b.classList.toggle("on", b === button));
  refreshCharts().catch(showError);
}));

// The job list: newest first, narrowed by the search box, state and client; "Older" pages
// back (and the list then holds still until "Newest").
let cursors = [];  // the cursor of each page shown after the first
let filters = {};  // what the last search asked for (typing alone changes nothing)

function listQuery() {
  const params = new URLSearchParams({ limit: "20", ...filters });
  if (cursors.length) params.set("cursor", cursors[cursors.length - 1]);
  return "/v1/jobs?" + params;
}

function takeFilters() {
  filters = {};
  for (const [id, name] of [["q", "q"], ["state", "status"], ["client", "client"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) filters[name] = value;
  }
}

let nextCursor = null;
let searches = 0;  // searches asked for; the list says which one it shows (data-searched)

async function refreshJobs() {
  const asked = searches;
  const page = await api(listQuery());
  if (asked !== searches) return;  // a newer search was asked for meanwhile: its answer shows
  nextCursor = page.next_cursor;
  document.getElementById("older").hidden = !nextCursor;
  document.getElementById("newest").hidden = !cursors.length;
  document.getElementById("jobs").replaceChildren(...page.items.map(j =>
    jobRow(j, j.id, j.track_id, stateBadge(j.status), ago(j.created_at), j.provider_id || "–",
      j.callback_status || "–", (j.request.prompt || "").slice(0, 40))));
  document.getElementById("jobs").dataset.searched = asked;
}

document.getElementById("search").addEventListener("submit", event => {
  event.preventDefault();
  cursors = [];
  takeFilters();
  searches += 1;
  refreshJobs().catch(showError);
});
document.getElementById("older").addEventListener("click", () => {
  if (nextCursor) cursors.push(nextCursor);
  refreshJobs().catch(showError);
});
document.getElementById("newest").addEventListener("click", () => {
  cursors = [];
  refreshJobs().catch(showError);
});
