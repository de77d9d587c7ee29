/* Sansuha, curators' pages: the bulk bar's selection and confirmations before merging duplicates.
   Everything works without it; it only counts, selects all, and asks before a merge. */
(function () {
  "use strict";

  // Bulk bar: checkboxes anywhere on the page belong to it through form="bulk-form".
  var bar = document.querySelector("form[data-bulk]");
  if (bar) {
    var boxes = document.querySelectorAll('input[type=checkbox][data-select][form="' + bar.id + '"]');
    var all = bar.querySelector("[data-select-all]");
    var count = bar.querySelector("[data-selected-count]");
    var buttons = bar.querySelectorAll("[data-needs-selection]");
    var update = function () {
      var n = Array.prototype.filter.call(boxes, function (box) { return box.checked; }).length;
      count.textContent = n ? count.dataset.some.replace("{n}", n) : count.dataset.none;
      buttons.forEach(function (button) { button.disabled = n === 0; });
      if (all) {
        all.checked = n > 0 && n === boxes.length;
        all.indeterminate = n > 0 && n < boxes.length;
      }
      bar.classList.toggle("has-selection", n > 0);
      boxes.forEach(function (box) {
        var holder = box.closest(".card, .review-row");
        if (holder) holder.classList.toggle("is-selected", box.checked);
      });
    };
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    update();
  }

  // Forms that delete something ask first; a button marked data-no-confirm (dismiss) does not.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.hasAttribute("data-no-confirm")) return;
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // A search that takes a moment shows that it is running.
  document.querySelectorAll("form[data-busy-form]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("[data-busy]");
      if (!button) return;
      button.disabled = true;
      button.textContent = button.dataset.busy;
    });
  });

  // Back to a page left by submitting: the buttons work again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) document.querySelectorAll("[data-busy]").forEach(function (b) { b.disabled = false; });
  });
})();
