// The open queue asks for its rows every data-refresh-seconds: new alerts appear without a reload.
// The rows come as HTML the server escaped; no value is inserted here.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table) { return; }
  var every = 1000 * Number(table.dataset.refreshSeconds || "5");
  var shown = null;
  function refresh() {
    fetch(table.dataset.rows, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        // Signed out (the session ended): reload, and the desk asks to sign in again.
        if (response.status === 401) { window.location.reload(); return; }
        if (!response.ok) { throw new Error(String(response.status)); }
        var open = response.headers.get("X-Open-Alerts");
        return response.text().then(function (rows) {
          // Replaced only when something changed: a row being clicked stays put otherwise.
          if (rows !== shown) { document.getElementById("queue-rows").innerHTML = rows; shown = rows; }
          if (open !== null) { document.getElementById("open-count").textContent = open; }
        });
      })
      .catch(function () { /* the next round tries again */ })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
}());
