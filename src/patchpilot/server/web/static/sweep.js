// Follows a sweep live: the page's session authorises the event stream (no bearer header).
(function () {
  "use strict";
  var box = document.getElementById("sweep-counts");
  var labels = JSON.parse(document.getElementById("sweep-labels").textContent);
  var source = new EventSource("/sweeps/" + box.dataset.sweep + "/events");
  function show(event) {
    var p = JSON.parse(event.data);
    ["affected", "not_affected", "unknown"].forEach(function (k) {
      document.getElementById("initial-" + k).textContent = p.initial[k] || 0;
    });
    document.getElementById("status-json").textContent = Object.keys(p.status).map(
      function (k) { return k + " " + p.status[k]; }).join(", ");
    document.getElementById("sweep-state").textContent = labels[p.state] || p.state;
  }
  source.addEventListener("progress", show);
  source.addEventListener("done", function (event) { show(event); source.close(); });
})();
