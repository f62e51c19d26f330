"use strict";
// One job's page: what it is, its request, its outputs (the archived copies, fetched with
// the key and shown as thumbnails), one timeline of everything that crossed either way
// (client in, provider out and in, callbacks out) with raw bodies folded, and the actions
// the key may take on it.

// Which way each event crossed, by its kind.
const DIRECTIONS = {
  created: "client → service",
  submit: "service → provider",
  submit_rejected: "service → provider",
  submit_error: "service → provider",
  resubmit_after_crash: "service → provider",
  webhook: "provider → service",
  poll: "service ⇄ provider (poll)",
  poll_error: "service ⇄ provider (poll)",
  callback_attempt: "service → client",
  callback_replay: "operator",
  action: "operator",
  archived: "service → output store",
  transition: "state",
};

// One line saying what an event was, before its detail is unfolded.
function summary(e) {
  const d = e.detail || {};
  switch (e.kind) {
    case "webhook":
      try { return "status " + JSON.parse(d.body).status; } catch (x) { return "unreadable body"; }
    case "submit": case "poll":
      return d.reply && d.reply.status ? "reply: " + d.reply.status : Object.keys(d).join(", ");
    case "callback_attempt":
      return "attempt " + d.attempt + ": " + d.outcome +
        (d.status_code ? " (HTTP " + d.status_code + ")" : d.error ? " (" + d.error + ")" : "");
    case "action":
      return d.action + " by " + d.key;
    case "callback_replay":
      return "replayed by " + (d.key || "?");
    default:
      return Object.keys(d).length ? Object.keys(d).join(", ") : "";
  }
}

function detailCell(e) {
  const td = el("td", {});
  const d = e.detail || {};
  if (!Object.keys(d).length) return td;
  const raw = typeof d.body === "string" ? d.body : JSON.stringify(d, null, 2);
  let shown = raw;
  if (typeof d.body === "string") {
    try { shown = JSON.stringify(JSON.parse(d.body), null, 2); } catch (x) {}
  }
  td.append(el("details", {}, el("summary", {}, summary(e)), el("pre", {}, shown)));
  return td;
}

// An event's month, day and time, to the millisecond (UTC; the full timestamp is its title).
function clock(iso) { return iso.slice(5, 23).replace("T", " "); }

function fact(dl, label, value) {
  dl.append(el("dt", {}, label), el("dd", { "data-fact": label }, value ?? "–"));
}

// Thumbnails of archived outputs: fetched with the key, shown from a blob: URL, kept per
// job, output and digest so a refresh does not fetch them again.
const thumbnails = {};

async function thumbnail(job, n, output) {
  const id = job.id + "/" + n + "/" + output.sha256;
  if (!(id in thumbnails)) {
    const response = await call("/v1/jobs/" + encodeURIComponent(job.id) + "/outputs/" + n);
    thumbnails[id] = URL.createObjectURL(await response.blob());
  }
  return thumbnails[id];
}

async function showOutputs(job) {
  const boxes = await Promise.all((job.outputs || []).map(async (o, n) => {
    const box = el("div", { class: "output", "data-output": n });
    if (o.url) {
      try {
        box.append(el("img", { src: await thumbnail(job, n, o), alt: "output " + n }));
      } catch (e) { box.append(el("div", {}, "could not load: " + e.message)); }
      box.append(el("div", {}, o.width + " × " + o.height + ", " + o.bytes + " bytes, " + o.content_type),
        el("div", {}, "sha256 " + (o.sha256 || "").slice(0, 16) + "…"));
    } else {
      box.append(el("div", {}, "not archived: " + (o.error || "?")));
    }
    box.append(el("div", {}, "provider: " + o.provider_url));
    return box;
  }));
  if (!boxes.length && job.output && job.output.length) {
    boxes.push(...job.output.map((url, n) => el("div", { class: "output", "data-output": n },
      "provider: " + url + (job.archive_status ? " (archive " + job.archive_status + ")" : ""))));
  }
  document.getElementById("job-outputs").replaceChildren(...(boxes.length ? boxes : ["none"]));
}

// May this key act on this job? admin on any; jobs:write on its own client's only (an ops
// key sees every client's jobs, so ask whether this one is among its own).
async function mayAct(job, who) {
  const scopes = who.scopes;
  if (scopes.includes("admin")) return true;
  if (!scopes.includes("jobs:write")) return false;
  if (!scopes.includes("ops:read")) return true;
  try {  // q also matches keys and provider ids: look for this very job among the answers
    const own = await api("/v1/jobs?limit=5&q=" + encodeURIComponent(job.id) +
      "&client=" + encodeURIComponent(who.client));
    return own.items.some(j => j.id === job.id);
  } catch (e) {
    return false;  // the server decides anyway: no buttons rather than a broken page
  }
}

const ACTIONS = [
  { id: "cancel", label: "Cancel", path: "cancel", when: j => !TERMINAL.includes(j.status) },
  { id: "refresh-now", label: "Refresh now", path: "refresh", when: j => j.status === "processing" },
  { id: "replay", label: "Replay callback", path: "callbacks/replay",
    when: j => j.callback_url && j.callback_status },
];

async function showActions(job, who) {
  const result = document.getElementById("action-result");
  const allowed = await mayAct(job, who);
  const buttons = allowed ? ACTIONS.filter(a => a.when(job)).map(a => {
    const button = el("button", { type: "button", id: a.id }, a.label);
    button.addEventListener("click", async () => {
      result.className = "";
      result.textContent = a.label + "…";
      try {
        await api("/v1/jobs/" + encodeURIComponent(job.id) + "/" + a.path, { method: "POST" });
        result.textContent = a.label + ": done";
      } catch (e) {
        result.className = "bad";
        result.textContent = a.label + ": " + e.message;
      }
      await refreshJob(job.id).catch(showError);
    });
    return button;
  }) : [];
  const holder = document.getElementById("actions");
  holder.replaceChildren(...buttons, result);
  holder.dataset.for = job.id + "@" + job.version;  // drawn for this job as it stands
}

async function refreshJob(jobId) {
  const path = "/v1/jobs/" + encodeURIComponent(jobId);
  const [job, events, who] = await Promise.all([api(path), api(path + "/events?limit=500"), whoAmI()]);
  document.getElementById("job-id").textContent = job.id;
  const state = document.getElementById("job-state");
  // Done for its client once settled: terminal, and its outputs no longer being kept.
  const settling = TERMINAL.includes(job.status) && !job.settled_at;
  state.className = "state " + job.status;
  state.textContent = job.status + (settling ? " · keeping outputs" : "");
  const facts = document.getElementById("job-facts");
  facts.replaceChildren();
  fact(facts, "track id", job.track_id);
  fact(facts, "provider id", job.provider_id);
  fact(facts, "error", job.error ? job.error.code + ": " + job.error.message : null);
  fact(facts, "created", job.created_at);
  fact(facts, "submitted", job.submitted_at);
  fact(facts, "eta", job.eta_at ? job.eta_at + " (" + ago(job.eta_at) + ")" : null);
  fact(facts, "next poll", job.next_poll_at);
  fact(facts, "finished", job.completed_at);
  fact(facts, "polls / webhooks", job.polls + " / " + job.webhooks);
  fact(facts, "callback", job.callback_url ? job.callback_url + " (" + (job.callback_status || "not yet") + ")" : null);
  fact(facts, "archive", job.archive_status &&
    job.archive_status + (job.archive_error ? " (" + job.archive_error + ")" : ""));
  fact(facts, "settled", job.settled_at || (settling ? "not yet: keeping its outputs" : null));
  fact(facts, "version", job.version);
  const image = job.request.image || "";
  const request = { ...job.request, metadata: job.metadata };
  if (image.startsWith("data:") && image.length > 120) {
    request.image = image.slice(0, 80) + "… (" + image.length + " characters)";
  }
  document.getElementById("job-request").textContent = JSON.stringify(request, null, 2);
  const opened = new Set([...document.querySelectorAll("#timeline details[open]")]
    .map(d => d.closest("tr").dataset.event));
  document.querySelector("#timeline tbody").replaceChildren(...events.items.map(e => {
    const tr = el("tr", { "data-event": e.id, "data-kind": e.kind },
      el("td", { title: e.at }, clock(e.at)), el("td", { class: "dir" }, DIRECTIONS[e.kind] || e.source || ""),
      el("td", {}, e.kind + (e.source ? " (" + e.source + ")" : "")),
      el("td", {}, e.from_status || e.to_status ? (e.from_status || "·") + " → " + (e.to_status || "·") : ""),
      detailCell(e));
    if (opened.has(String(e.id))) tr.querySelector("details").open = true;
    return tr;
  }));
  await Promise.all([showOutputs(job), showActions(job, who)]);
}
