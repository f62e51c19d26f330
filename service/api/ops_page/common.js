"use strict";
// What every view shares: the key, calls to the API, and building elements.
// The key comes from the form or the URL fragment (#key=…, never sent to the server),
// lives in sessionStorage, and travels only in the Authorization header.
const STORE = "outpaint-ops-key";
const REFRESH_MS = 5000;
const TERMINAL = ["succeeded", "failed", "timed_out", "canceled"];
let lastHeard = null;
let me = null;  // GET /v1/me: the key's client, prefix and scopes

// When the page last heard from the service; stale (red) after three missed refreshes.
function showHeard() {
  if (lastHeard === null) return;
  const status = document.getElementById("status");
  const seconds = Math.round((Date.now() - lastHeard) / 1000);
  status.textContent = "last heard from the service " + seconds + " s ago";
  status.classList.toggle("stale", seconds > 3 * REFRESH_MS / 1000);
}

function heard() { lastHeard = Date.now(); showHeard(); }

function showError(e) { document.getElementById("error").textContent = e ? e.message : ""; }

// The fragment's parameters (key=…, job=…).
function fragment() { return new URLSearchParams(location.hash.replace(/^#/, "")); }

// A link's #key= is taken at once when none is in use; one that differs from the key in
// use replaces it only if the operator says so (a link must not swap it silently).
function takeKeyFromFragment() {
  const params = fragment();
  if (params.has("key")) {
    const offered = params.get("key");
    const current = key();
    if (offered !== current && (current === null || confirm(
        "This link carries another key (" + offered.slice(0, 12) + "…). Use it instead of " +
        "the key in use (" + current.slice(0, 12) + "…)?"))) {
      me = null;  // another key: ask again what it may do
      sessionStorage.setItem(STORE, offered);
    }
    params.delete("key");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

function key() { return sessionStorage.getItem(STORE); }

async function call(path, options) {
  const response = await fetch(path, {
    ...(options || {}),
    headers: { "Authorization": "Bearer " + key(), ...((options || {}).headers || {}) },
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) {}
    const error = new Error(response.status + ": " + detail);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function api(path, options) {
  const response = await call(path, options);
  return response.status === 204 ? null : response.json();
}

// The key's client and scopes, asked once per key (an answer for a key no longer in use
// is not kept).
async function whoAmI() {
  if (me !== null) return me;
  const asked = key();
  const answer = await api("/v1/me");
  if (asked === key()) me = answer;
  return answer;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) {
    node.append(c instanceof Node ? c : (c === null || c === undefined ? "" : String(c)));
  }
  return node;
}

function card(label, value, cls) {
  const c = el("div", { class: "card " + (cls || ""), "data-label": label });
  c.append(el("div", { class: "n" }, value === null ? "–" : value), el("div", { class: "label" }, label));
  return c;
}

function ago(iso) {
  if (!iso) return "–";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s >= 0 ? s + " s ago" : "in " + (-s) + " s";
}

function stateBadge(status) { return el("span", { class: "state " + status }, status); }

function openJob(jobId) { location.hash = "job=" + encodeURIComponent(jobId); }

// A table row that opens a job's page.
function jobRow(job, ...cells) {
  const tr = el("tr", { class: "job", "data-job": job.id }, ...cells.map(c => el("td", {}, c)));
  tr.addEventListener("click", () => openJob(job.id));
  return tr;
}
