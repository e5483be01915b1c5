// Starts Swagger UI on /api/docs with the settings the page carries in data- attributes: a file rather
// than flask-smorest's inline script, so that the page's Content-Security-Policy can forbid inline scripts.
(function () {
  "use strict";
  var container = document.getElementById("swagger-ui-container");
  var config = JSON.parse(container.getAttribute("data-config") || "{}");
  config.url = container.getAttribute("data-spec-url");
  config.dom_id = "#swagger-ui-container";
  window.ui = SwaggerUIBundle(config);
})();
