"use strict";
// Which view the fragment asks for (#job=ID, else the overview), refreshed every few seconds.

function jobInView() { return fragment().get("job"); }

async function refresh() {
  if (!key()) { document.getElementById("status").textContent = "enter an ops key"; return; }
  const jobId = jobInView();
  document.getElementById("overview").hidden = jobId !== null;
  document.getElementById("job-view").hidden = jobId === null;
  try {
    if (jobId !== null) await refreshJob(jobId); else await refreshOverview();
    showError(null);
    heard();
  } catch (e) {
    showError(e);
  }
}

document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("key").value.trim();
  if (value) sessionStorage.setItem(STORE, value);
  me = null;
  document.getElementById("key").value = "";
  refresh();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(STORE);
  location.reload();
});
document.getElementById("back").addEventListener("click", (event) => {
  event.preventDefault();
  history.pushState(null, "", location.pathname + location.search);
  refresh();
});
window.addEventListener("hashchange", () => { takeKeyFromFragment(); refresh(); });

takeKeyFromFragment();
refresh();
setInterval(refresh, REFRESH_MS);
setInterval(showHeard, 1000);
