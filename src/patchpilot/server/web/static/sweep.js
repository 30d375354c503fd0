// Follows a sweep live: the page's session authorises the event stream (no bearer header).
// Counts change with every event; the per-asset table is re-read from the page itself
// when the confirmations change (at most once a second), so it shows who confirmed.
(function () {
  "use strict";
  var box = document.getElementById("sweep-counts");
  var labels = JSON.parse(document.getElementById("sweep-labels").textContent);
  var source = new EventSource("/sweeps/" + box.dataset.sweep + "/events");
  var lastStatus = null;
  var pending = false;
  function refreshTable() {
    if (pending) { return; }
    pending = true;
    setTimeout(function () {
      fetch(window.location.pathname, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          pending = false;
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html")
            .querySelector("#sweep-results tbody");
          var table = document.querySelector("#sweep-results tbody");
          if (fresh && table) { table.replaceWith(fresh); }
        })
        .catch(function () { pending = false; });
    }, 1000);
  }
  function show(event) {
    var p = JSON.parse(event.data);
    ["affected", "not_affected", "unknown"].forEach(function (k) {
      document.getElementById("initial-" + k).textContent = p.initial[k] || 0;
    });
    document.getElementById("status-json").textContent = Object.keys(p.status).map(
      function (k) { return (labels[k] || k) + " " + p.status[k]; }).join(", ");
    document.getElementById("sweep-state").textContent = labels[p.state] || p.state;
    var status = JSON.stringify(p.status);
    if (lastStatus !== null && status !== lastStatus) { refreshTable(); }
    lastStatus = status;
  }
  source.addEventListener("progress", show);
  source.addEventListener("done", function (event) { show(event); source.close(); });
})();
