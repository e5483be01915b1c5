// Keeps a page current while work runs: every few seconds it fetches the page again and swaps in the
// elements marked data-live (matched by id), leaving everything else alone (a form being filled in, the
// scroll position). The server says on <body data-busy> whether work is running; when nothing is, it
// looks four times less often. No library, no network but this app.
(function () {
  "use strict";
  var body = document.body;
  if (!document.querySelector("[data-live]")) return;
  var every = Number(body.getAttribute("data-refresh-seconds") || "3") * 1000;

  function later(busy) {
    window.setTimeout(refresh, busy ? every : every * 4);
  }

  function refresh() {
    if (document.hidden) return later(false);
    fetch(window.location.href, { cache: "no-store", headers: { "X-Live-Refresh": "1" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var fresh = page.getElementById(region.id);
          if (fresh) region.replaceWith(document.importNode(fresh, true));
        });
        var busy = page.body.getAttribute("data-busy") === "true";
        body.setAttribute("data-busy", busy ? "true" : "false");
        body.setAttribute("data-refreshed-at", String(Date.now()));
        later(busy);
      })
      .catch(function () {
        later(false); // the server is restarting or away: try again, less often
      });
  }

  later(body.getAttribute("data-busy") === "true");
})();
