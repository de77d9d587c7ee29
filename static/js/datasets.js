/* Dataset version page: while an export is being built, ask for its progress every 1.5 s and move the
   bar; once it is finished (or failed), reload so that the page shows the download (or the reason). */
(function () {
  "use strict";

  document.querySelectorAll("[data-export-status-url]").forEach(function (item) {
    var bar = item.querySelector("[data-export-bar]");
    var meter = item.querySelector("[role=progressbar]");
    var text = item.querySelector("[data-export-text]");
    var state = item.querySelector("[data-export-state]");
    var poll = function () {
      fetch(item.dataset.exportStatusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && (data.status === "done" || data.status === "failed")) {
            window.location.reload();
            return;
          }
          if (data) {
            if (bar) bar.style.width = data.percent + "%";
            if (meter) {
              meter.setAttribute("aria-valuenow", data.done_items);
              meter.setAttribute("aria-valuemax", data.total_items);
            }
            if (text && text.dataset.template) {
              text.textContent = text.dataset.template.replace("{done}", data.done_items).replace("{total}", data.total_items);
            }
            if (state && data.status === "running") {
              state.className = "tag tag-status status-running";
              state.textContent = state.dataset.textRunning;
            }
          }
          window.setTimeout(poll, 1500);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    window.setTimeout(poll, 1500);
  });
})();
