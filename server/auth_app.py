"""MLflow's basic-auth app plus two rules: only writers create, and the login is the run's user.
Served by server/mlflow_server.py.

MLflow's basic auth lets every logged-in user create an experiment (and then own it, MANAGE),
a registered model or prompt, a gateway secret/model/endpoint (an endpoint creates a
`gateway/<name>` experiment), the demo data (the "MLflow Demo" experiment), an MCP server or
(MLflow 3.18) a skill, whatever `default_permission` says. `create_app` below is MLflow's
`create_app` plus two filters of our own that refuse those creates with 403 unless the user is a
writer,

    the admin, or a user granted EDIT or MANAGE on *every* experiment (resource `experiment`,
    id `*`), or every user when `default_permission` is EDIT or MANAGE,

read from MLflow's auth store on each request, through its public methods (`get_user`,
`list_experiment_permissions`, `authenticate_user`), so a user the admin grants EDIT on `*` later
counts at once. Grants through a named role do not count here (fail closed: grant the user).

- Flask (the REST API `/api/...` and the UI's `/ajax-api/...`): a `before_request` that runs
  after MLflow's own, which has already authenticated the user; POST to the routes in
  `FLASK_CREATES`, matched by our own patterns, not by MLflow's private route tables.
- The registries FastAPI serves itself (MCP servers; skills in MLflow 3.18): an outermost ASGI
  middleware that reads the basic-auth header itself; a non-writer gets 403 on any write (POST,
  PUT, PATCH, DELETE) there. A request with bad credentials is passed on for MLflow to answer 401.

A third filter makes the login the run's user: on CreateRun the `user_id` and the `mlflow.user`
tag the client sent (MLflow's client sends the OS user) become the basic-auth username, and a
SetTag/LogBatch that sets `mlflow.user` to anyone else, or a DeleteTag of it, gets 403
(`login_is_the_user`).

Everything else (runs, logging into an existing experiment, reads) is left to MLflow's
per-resource checks: a READ user, who can neither create an experiment nor edit one, writes no
run anywhere. At start, `check_routes` fails the start if MLflow no longer serves the
create-experiment route this rule is built around, and logs a warning naming any create route
it does not know (a new kind of resource to review on an MLflow upgrade).

Every Flask answer carries `X-Backprop-Lab-Server: $BACKPROP_LAB_SERVER_ID`, by which the
starting script knows that the server answering is the one it started, with this rule loaded.
mlflow_server.py declares `create_app` as the `mlflow.app` entry point `backprop-lab-auth`.
Tested against the real server on MLflow 3.17 and 3.18 (tests/commands/test_server.py).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import logging
import os
import re
from typing import Any

import mlflow.server
from flask import Flask, Response, make_response, request
from mlflow.server import auth
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response as StarletteResponse

log = logging.getLogger(__name__)
HEADER = "X-Backprop-Lab-Server"
WRITE_GRANTS = ("EDIT", "MANAGE")
# `[static prefix]/api|ajax-api/<version>/mlflow/<what>`
_API = r"^(?:/[^/]+)*?/(?:api|ajax-api)/[0-9.]+/mlflow/"
# POST routes (Flask) that any logged-in user passes in MLflow and only writers may use here.
FLASK_CREATES = re.compile(_API + r"(?:experiments/create|registered-models/create|"
                           r"gateway/(?:secrets|model-definitions|endpoints)/create|"
                           r"demo/generate)$")
# Registries served by FastAPI itself: every write there is for writers only.
ASGI_REGISTRIES = re.compile(_API + r"(?:mcp-servers|skills)(?:/|$)")
WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Create routes MLflow 3.17-3.18 serve that its per-resource checks guard (a run needs EDIT on
# its experiment, a model version on its model, ...) or that this rule covers: a create route not
# listed is a new kind of resource to review.
KNOWN_CREATES = re.compile(_API + r"(?:experiments|registered-models|runs|model-versions|"
                           r"datasets|label-schemas|review-queues|users|"
                           r"gateway/(?:secrets|model-definitions|endpoints|endpoints/bindings|"
                           r"budgets|guardrails))/create$")
REQUIRED = "/api/2.0/mlflow/experiments/create"
# The run's user: set from the login at creation, never changed to someone else afterwards.
USER_TAG = "mlflow.user"  # MLflow takes a run's user_id (the UI's User column) from it
RUN_CREATE = re.compile(_API + r"runs/create$")
RUN_TAG_WRITES = re.compile(_API + r"runs/(?:set-tag|log-batch|delete-tag)$")
EVERYONE_WRITES = [False]  # set by create_app from the auth config (default_permission)


def everyone_writes() -> bool:
    """`default_permission` EDIT or MANAGE makes every user a writer (MLflow's floor)."""
    from mlflow.server.auth.config import read_auth_config

    return str(read_auth_config().default_permission).upper() in WRITE_GRANTS


def is_writer(username: str) -> bool:
    """The admin, or EDIT/MANAGE granted on every experiment (experiment id `*`)."""
    if not username:
        return False
    if auth.store.get_user(username).is_admin or EVERYONE_WRITES[0]:
        return True
    return any(str(p.experiment_id) == "*" and str(p.permission).upper() in WRITE_GRANTS
               for p in auth.store.list_experiment_permissions(username))



def refusal(username: str) -> str:
    return (f"Permission denied: user {username!r} may browse but not create here (only the admin "
            "and users with EDIT or MANAGE on every experiment create experiments, models, "
            "prompts, gateway resources, MCP servers, skills or demo data)")


def writers_only() -> Response | None:
    """before_request, after MLflow's (which has authenticated the user and found nothing
    against the request): refuse a create in FLASK_CREATES to a user who is not a writer."""
    if request.method != "POST" or not FLASK_CREATES.match(request.path):
        return None
    username = request.authorization.username if request.authorization else ""
    if is_writer(username or ""):
        return None
    answer = make_response(refusal(username or ""))
    answer.status_code = 403
    return answer


def forbidden(message: str, status: int = 403) -> Response:
    answer = make_response(message)
    answer.status_code = status
    return answer


def login_is_the_user() -> Response | None:
    """before_request, after MLflow's (the login is authenticated, the write permitted): a run's
    user is the login that creates it. MLflow's client sends the OS user (or "unknown") as
    `user_id` and the `mlflow.user` tag; on CreateRun both become the login, whatever was sent.
    SetTag/LogBatch setting `mlflow.user` to anyone but the login, and DeleteTag of it, get 403.

    The rewrite edits the JSON body in place: Flask parses it once per request and hands
    MLflow's handler the same object (checked here: if it ever did not, the request is
    refused rather than stored under the user the client claimed)."""
    if request.method != "POST":
        return None
    create = RUN_CREATE.match(request.path) is not None
    if not create and not RUN_TAG_WRITES.match(request.path):
        return None
    username = request.authorization.username if request.authorization else ""
    if not username:
        return None  # MLflow's own filter answers a request without a login
    body = request.get_json(force=True, silent=True)
    if body is None:
        return None  # no JSON body: MLflow's handler answers 400
    if not isinstance(body, dict):  # e.g. JSON sent as a JSON string, which MLflow decodes again
        return forbidden("Bad request: send the request body as a JSON object", 400)
    if create:
        tags = [t for t in body.get("tags") or [] if not (isinstance(t, dict)
                                                          and t.get("key") == USER_TAG)]
        body["tags"] = [*tags, {"key": USER_TAG, "value": username}]
        body["user_id"] = username
        if request.get_json(force=True, silent=True) is not body:
            return forbidden("auth_app: cannot set the run's user to the login on this Flask "
                             "version (the request body is not cached); review auth_app.py", 500)
        return None
    if request.path.endswith("/delete-tag"):
        if body.get("key") == USER_TAG:
            return forbidden(f"Permission denied: a run's {USER_TAG} is the login that created "
                             f"it; user {username!r} may not delete it")
        return None
    if request.path.endswith("/set-tag"):
        claimed = [str(body.get("value"))] if body.get("key") == USER_TAG else []
    else:
        claimed = [str(t.get("value")) for t in body.get("tags") or []
                   if isinstance(t, dict) and t.get("key") == USER_TAG]
    others = sorted({value for value in claimed if value != username})
    if others:
        return forbidden(f"Permission denied: a run's {USER_TAG} is the login that created it; "
                         f"user {username!r} may not set it to {others[0]!r}")
    return None


def basic_auth_user(header: str) -> tuple[str, str] | None:
    """(username, password) of a `Basic ...` Authorization header, None for anything else."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def checked_writer(username: str, password: str) -> bool | None:
    """None when the credentials are wrong (MLflow answers that), else whether a writer."""
    if not auth.store.authenticate_user(username, password):
        return None
    return is_writer(username)


async def registry_writers_only(request: Request, call_next: RequestResponseEndpoint
                                ) -> StarletteResponse:
    """The rule for the registries FastAPI serves (outermost: it authenticates by itself)."""
    if request.method in WRITES and ASGI_REGISTRIES.match(request.url.path):
        credentials = basic_auth_user(request.headers.get("authorization", ""))
        if credentials is not None:
            writer = await run_in_threadpool(checked_writer, *credentials)
            if writer is False:
                return PlainTextResponse(refusal(credentials[0]), status_code=403)
    return await call_next(request)


def check_routes(flask_app: Flask) -> None:
    """Fail the start if MLflow no longer serves the create-experiment route; warn about any
    POST `.../create` route this module does not know."""
    posts = {rule.rule for rule in flask_app.url_map.iter_rules() if "POST" in (rule.methods or ())}
    if not any(path.endswith(REQUIRED) for path in posts):
        raise RuntimeError(f"auth_app: MLflow serves no {REQUIRED}: the writers-only rule "
                           "cannot be checked against this MLflow version; review auth_app.py")
    for path in sorted(posts):
        if path.endswith("/create") and not KNOWN_CREATES.match(path):
            log.warning("auth_app: MLflow serves a create route this rule does not know: %s "
                        "(review whether READ users may call it)", path)


def mark(response: Response) -> Response:
    response.headers[HEADER] = os.environ.get("BACKPROP_LAB_SERVER_ID", "1")
    return response


def create_app() -> Any:
    """MLflow's basic-auth app (a FastAPI app around the Flask one under uvicorn), then the rule.

    Each uvicorn worker calls this. MLflow's create_app creates the auth tables and the admin on
    first use, which `mlflow server --app-name basic-auth` does once before the workers start;
    for any other app name every worker does it, so the workers take turns (a lock on this file).
    """
    flask_app: Flask = mlflow.server.app
    check_routes(flask_app)
    with open(__file__) as me:
        fcntl.flock(me, fcntl.LOCK_EX)
        app = auth.create_app(flask_app)
    EVERYONE_WRITES[0] = everyone_writes()
    flask_app.before_request(writers_only)
    flask_app.before_request(login_is_the_user)
    flask_app.after_request(mark)
    if not isinstance(app, Flask):  # FastAPI (uvicorn): outermost, before MLflow's middleware
        app.add_middleware(BaseHTTPMiddleware, dispatch=registry_writers_only)
    return app
