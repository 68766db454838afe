"""py-hello: an Osler plugin written in Python.

  GET /plugins/py-hello/            a page greeting the signed-in person; counts the visit
  GET /plugins/py-hello/api/visits  {"site", "visits", "greeting"} as JSON

The host runs every request in a fresh instance: nothing in module globals survives from one
request to the next. What must last goes in kv (one store per plugin, shared by every site
where it is enabled, so the site goes into the key).

componentize-py snapshots the interpreter after importing this module at build time, and the
component carries no files: import every module you need here, at the top.
"""

import html
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, kv
from wit_world.imports.types import (
    Caller,
    Error,
    Error_Conflict,
    Error_Denied,
    Error_Internal,
    Error_Invalid,
    Error_NotFound,
    Error_TooLarge,
    Error_Unavailable,
    Request,
    Response,
)

# The HTTP status and code of each case of osler:plugin/types.error.
STATUS = {
    Error_Denied: (403, "denied"),
    Error_NotFound: (404, "not-found"),
    Error_Invalid: (400, "invalid"),
    Error_Conflict: (409, "conflict"),
    Error_Unavailable: (503, "unavailable"),
    Error_TooLarge: (413, "too-large"),
    Error_Internal: (500, "internal"),
}


class Handler(exports.Handler):
    def handle(self, request: Request) -> Response:
        """`request` is osler:plugin/types.request: method, path (inside the plugin), query,
        headers, body (bytes) and caller (user, display_name, roles, site, site_name, ...)."""
        try:
            return route(request)
        except Err as e:
            # A host call that fails raises Err with its osler:plugin/types.error.
            return from_error(e.value)


def route(request: Request) -> Response:
    method, path = request.method, request.path
    if path in ("/", "/api/visits"):
        if method not in ("GET", "HEAD"):
            return as_json(
                405,
                {"error": {"code": "method-not-allowed", "message": f"{method} {path}: use GET"}},
                [("allow", "GET, HEAD")],
            )
        return page(request.caller) if path == "/" else visits(request.caller)
    return as_json(404, {"error": {"code": "not-found", "message": f"no route {path}"}})


def page(caller: Caller) -> Response:
    count = count_visit(caller.site)
    times = "time" if count == 1 else "times"
    body = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hello from Python</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}</style></head>
<body>
<p><a href="/">Osler</a></p>
<h1>Hello from Python</h1>
<p>{html.escape(greeting())}, {html.escape(caller.display_name)}!</p>
<p>This page has been opened <strong>{count}</strong> {times} at {html.escape(caller.site_name)}.</p>
</body>
</html>
"""
    return respond(200, "text/html; charset=utf-8", body)


def visits(caller: Caller) -> Response:
    value = kv.get(visits_key(caller.site))
    return as_json(
        200,
        {
            "site": caller.site,
            "visits": 0 if value is None else int(value.decode()),
            "greeting": greeting(),
        },
    )


def greeting() -> str:
    """The site's greeting: the administrator's value, or the manifest's default."""
    value = config.get("greeting")
    return value.value if isinstance(value, config.Value_Text) else "Hello"


def visits_key(site: str) -> str:
    return f"site/{site}/visits"


def count_visit(site: str) -> int:
    """Add one to the site's counter with compare-and-swap: the batch writes only if the
    counter still holds what was read, so two visits at the same moment are both counted."""
    key = visits_key(site)
    for _ in range(5):
        old = kv.get(key)
        new = (0 if old is None else int(old.decode())) + 1
        try:
            kv.batch(
                [
                    kv.Op_Expect(kv.Expectation(key, old)),
                    kv.Op_Put(kv.Entry(key, str(new).encode())),
                ]
            )
            return new
        except Err as e:
            if not isinstance(e.value, Error_Conflict):
                raise
    raise Err(Error_Conflict("the visit counter is busy; try again"))


def from_error(error: Error) -> Response:
    status, code = STATUS.get(type(error), (500, "internal"))
    return as_json(status, {"error": {"code": code, "message": error.value}})


def as_json(status: int, value: object, headers: list[tuple[str, str]] | None = None) -> Response:
    return respond(status, "application/json", json.dumps(value), headers)


def respond(
    status: int, content_type: str, text: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return Response(status, [("content-type", content_type), *(headers or [])], text.encode())
