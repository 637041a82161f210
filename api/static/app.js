// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // Countdowns: <span class="countdown" data-due="2026-12-01T09:00:00Z" data-late="超期" ...>
  function renderCountdown(el, now) {
    var due = Date.parse(el.getAttribute("data-due"));
    if (isNaN(due)) { return; }
    var seconds = Math.round((due - now) / 1000);
    var late = seconds < 0;
    var s = Math.abs(seconds);
    var days = Math.floor(s / 86400);
    var text = (days > 0 ? days + "d " : "") + pad(Math.floor((s % 86400) / 3600)) + ":" +
      pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
    el.textContent = late ? (el.getAttribute("data-late") || "overdue") + " " + text : text;
    el.classList.toggle("late", late);
  }

  function tick() {
    var now = Date.now();
    var nodes = document.querySelectorAll(".countdown[data-due]");
    for (var i = 0; i < nodes.length; i++) { renderCountdown(nodes[i], now); }
  }

  // Upload with progress: <form data-upload-progress> posts with XHR and follows the server's redirect.
  function enhanceUpload(form) {
    form.addEventListener("submit", function (event) {
      var bar = form.querySelector("progress");
      if (!window.FormData || !bar) { return; }
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open(form.method || "POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round((e.loaded / e.total) * 100); }
      });
      xhr.addEventListener("load", function () {
        if (xhr.responseURL && xhr.status < 400) { window.location.assign(xhr.responseURL); return; }
        document.open(); document.write(xhr.responseText); document.close();
      });
      xhr.addEventListener("error", function () { form.submit(); });
      bar.classList.remove("hidden");
      var buttons = form.querySelectorAll("button");
      for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
      xhr.send(new FormData(form));
    });
  }

  // "Select all" for bulk actions: <input type="checkbox" data-select-all="name">
  function enhanceSelectAll(box) {
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-select-all");
      var boxes = document.querySelectorAll('input[type=checkbox][name="' + name + '"]');
      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = box.checked; }
    });
  }

  // Confirm before irreversible actions: <button data-confirm="...">
  function enhanceConfirm(button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  }

  function init(root) {
    var i, nodes;
    nodes = root.querySelectorAll("form[data-upload-progress]");
    for (i = 0; i < nodes.length; i++) { enhanceUpload(nodes[i]); }
    nodes = root.querySelectorAll("input[data-select-all]");
    for (i = 0; i < nodes.length; i++) { enhanceSelectAll(nodes[i]); }
    nodes = root.querySelectorAll("button[data-confirm]");
    for (i = 0; i < nodes.length; i++) { enhanceConfirm(nodes[i]); }
    tick();
  }

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
