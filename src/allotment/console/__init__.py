"""The web console at `/console` (issue 20, docs/console.md): server-rendered pages for support
staff and founders, an HTTP edge beside `http/` that reads and acts through the same runtime
ports as the API. The domain and the runtime never import it."""
