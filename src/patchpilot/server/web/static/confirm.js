// Asks before a form with a data-confirm question is submitted (the schedules page's
// removals).  A static file, not an inline onsubmit: the Content-Security-Policy allows
// scripts from /static only (server/headers.py).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.dataset.confirm : null;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
