// Small behaviours of the console's operations pages (exports, webhooks); each page works without them.
(function () {
  "use strict";
  // <select data-shows="group">: show only the [data-group=group] element whose data-object is the chosen value.
  function sync(select) {
    for (const box of document.querySelectorAll(`[data-group="${select.dataset.shows}"]`)) {
      box.hidden = box.dataset.object !== select.value;
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    for (const select of document.querySelectorAll("select[data-shows]")) {
      sync(select);
      select.addEventListener("change", () => sync(select));
    }
  });
})();

// <form data-confirm="question">: asks before posting (deleting, say).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
