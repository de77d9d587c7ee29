/* Sansuha: the few behaviours the pages need, without a framework or a network fetch at load.
   Each part looks for its own element and does nothing when the page has none. */
(function () {
  "use strict";

  // Detail page: the Grad-CAM overlay's opacity follows the slider.
  document.querySelectorAll("input[type=range][data-overlay]").forEach(function (slider) {
    var overlay = document.getElementById(slider.dataset.overlay);
    var output = document.getElementById(slider.id + "-value");
    function apply() {
      if (overlay) overlay.style.opacity = String(slider.value / 100);
      if (output) output.textContent = slider.value + "%";
    }
    slider.addEventListener("input", apply);
    apply();
  });

  // Detail page: while the prediction is pending or running, ask every 2 s; reload once it is finished.
  var panel = document.querySelector("[data-status-url]");
  if (panel) {
    var text = panel.querySelector("[data-status-text]");
    var poll = function () {
      fetch(panel.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && (data.status === "done" || data.status === "failed")) {
            window.location.reload();
            return;
          }
          if (data && text && text.dataset["text" + data.status.charAt(0).toUpperCase() + data.status.slice(1)]) {
            text.textContent = text.dataset["text" + data.status.charAt(0).toUpperCase() + data.status.slice(1)];
          }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    };
    window.setTimeout(poll, 2000);
  }

  // Upload page: drop files on the zone to upload them at once; chosen files are listed by name.
  var zone = document.querySelector("[data-dropzone]");
  if (zone) {
    var input = zone.querySelector("input[type=file]");
    var list = zone.querySelector("[data-chosen]");
    var maxBytes = parseInt(zone.dataset.maxBytes || "0", 10);
    var maxFiles = parseInt(zone.dataset.maxFiles || "0", 10);
    var tooMany = zone.querySelector("[data-too-many-message]");
    var form = zone.closest("form");
    var submit = form.querySelector("[data-submit]");
    var formatSize = function (bytes) {
      return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB";
    };
    var show = function () {
      list.textContent = "";
      Array.prototype.forEach.call(input.files, function (file) {
        var item = document.createElement("li");
        var isZip = /\.zip$/i.test(file.name);
        item.textContent = file.name + " · " + formatSize(file.size);
        if (maxBytes && !isZip && file.size > maxBytes) item.className = "too-large";
        list.appendChild(item);
      });
      zone.classList.toggle("has-files", input.files.length > 0);
      // Django would answer a bare "400 Bad Request" to more files than its limit: say it here instead.
      var over = maxFiles && input.files.length > maxFiles;
      tooMany.hidden = !over;
      tooMany.textContent = over ? zone.dataset.tooMany : "";
      return !over;
    };
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      if (show()) form.requestSubmit ? form.requestSubmit() : form.submit();
    });
    form.addEventListener("submit", function (event) {
      if (!show()) {
        event.preventDefault();
        return;
      }
      if (submit) {
        submit.disabled = true;
        if (submit.dataset.busy) submit.textContent = submit.dataset.busy;
      }
      zone.classList.add("uploading");
    });
  }

  // Gallery filters: open on wide screens; a changed select applies at once (Apply stays for typed
  // values); empty fields stay out of the URL, so that every filter state has one short address.
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia("(min-width: 900px)").matches) filters.open = true;
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () {
        form.requestSubmit ? form.requestSubmit() : form.submit();
      });
    });
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (field) {
        if (field.name && field.value === "") field.disabled = true;
      });
    });
  });

  // Coming back with the Back button shows the page as it was left: undo what submitting disabled.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form [disabled]").forEach(function (field) { field.disabled = false; });
    document.querySelectorAll(".uploading").forEach(function (el) { el.classList.remove("uploading"); });
  });
})();
