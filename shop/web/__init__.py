"""The web process: the Flask app factory, the REST API, health probes and the request-level guards."""
