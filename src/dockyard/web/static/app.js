// dockyard web UI: copy buttons, confirmation dialogs, auto-submitting selects. No framework.
(function () {
  "use strict";
  var toastTimer;
  function announce(text) {
    var status = document.getElementById("status");
    if (!status) return;
    status.textContent = text;
    status.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { status.classList.remove("show"); }, 2500);
  }

  function copyText(input) {
    var text = input.value;
    function fallback() {
      input.focus();
      input.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
    }
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(fallback);
    }
    return fallback();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    copyText(input).then(function () {
      button.textContent = "Copied";
      button.classList.add("copied");
      document.body.setAttribute("data-last-copied", input.value);
      announce("Copied: " + input.value);
      setTimeout(function () { button.textContent = "Copy"; button.classList.remove("copied"); }, 2000);
    }, function () {
      input.select();
      announce("Press Ctrl+C to copy");
    });
  });

  // Delete forms ask first in a dialog; the server asks too when scripts are off.
  var dialog = document.getElementById("confirm");
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-confirm") || form.getAttribute("data-confirmed") === "yes") return;
    if (!dialog || typeof dialog.showModal !== "function") return;
    event.preventDefault();
    document.getElementById("confirm-text").textContent = form.getAttribute("data-confirm");
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue !== "ok") return;
      var confirm = document.createElement("input");
      confirm.type = "hidden"; confirm.name = "confirm"; confirm.value = "yes";
      form.appendChild(confirm);
      form.setAttribute("data-confirmed", "yes");
      form.submit();
    });
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
