/* Model versions pages: after "Activate", follow the re-classification of the gallery (done / total)
   by asking the progress endpoint every 2 s until every painting has a prediction by the version. */
(function () {
  "use strict";

  document.querySelectorAll("[data-progress-url]").forEach(function (panel) {
    if (panel.hasAttribute("data-finished")) return;
    var bar = panel.querySelector("[data-bar]");
    var done = panel.querySelector("[data-done]");
    var total = panel.querySelector("[data-total]");
    var failed = panel.querySelector("[data-failed]");
    var failedLine = panel.querySelector("[data-failed-line]");
    var state = panel.querySelector("[data-state]");
    var poll = function () {
      fetch(panel.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data) {
            if (bar) { bar.max = Math.max(1, data.total); bar.value = data.done + data.failed; }
            if (done) done.textContent = data.done;
            if (total) total.textContent = data.total;
            if (failed) failed.textContent = data.failed;
            if (failedLine) failedLine.hidden = !data.failed;
            if (data.finished) {
              panel.setAttribute("data-finished", "");
              if (state) state.textContent = state.dataset.textFinished;
              return;
            }
          }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    };
    window.setTimeout(poll, 2000);
  });
})();
