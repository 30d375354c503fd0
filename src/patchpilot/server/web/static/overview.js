// Draws the overview's charts from the JSON the server embedded in the page.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var config = {displayModeBar: false, responsive: true};
  var layout = function (extra) {
    return Object.assign({margin: {t: 10, r: 10, b: 40, l: 40}, height: 260,
                          paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"}, extra);
  };
  var severityColours = {Critical: "#7b1fa2", High: "#c62828", Medium: "#ef6c00", Low: "#fbc02d",
                         None: "#9e9e9e", Unknown: "#bdbdbd"};
  var priorityColours = {P1: "#b71c1c", P2: "#e65100", P3: "#f9a825", P4: "#558b2f"};
  Plotly.newPlot("chart-priority", [{
    type: "bar", x: data.priority.labels, y: data.priority.values,
    marker: {color: data.priority.labels.map(function (p) { return priorityColours[p] || "#777"; })},
    text: data.priority.values, textposition: "auto"
  }], layout({}), config);
  Plotly.newPlot("chart-severity", [{
    type: "pie", hole: 0.5, labels: data.severity.labels, values: data.severity.values,
    sort: false, marker: {colors: data.severity.keys.map(function (s) { return severityColours[s]; })}
  }], layout({showlegend: true}), config);
  Plotly.newPlot("chart-trend", [
    {type: "bar", name: data.trend.opened_label, x: data.trend.weeks, y: data.trend.opened,
     marker: {color: "#c62828"}},
    {type: "bar", name: data.trend.fixed_label, x: data.trend.weeks, y: data.trend.fixed,
     marker: {color: "#2e7d32"}}
  ], layout({barmode: "group", xaxis: {type: "category"}}), config);
})();
