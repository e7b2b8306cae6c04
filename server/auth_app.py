"""MLflow's basic-auth app plus one rule: only writers create. Served by server/mlflow_server.py.

MLflow's basic auth lets every logged-in user create an experiment (and then own it, MANAGE),
a registered model or prompt, a gateway secret/model/endpoint (an endpoint creates a
`gateway/<name>` experiment), an MCP server or the demo data (the "MLflow Demo" experiment),
whatever `default_permission` says. `create_app` below is MLflow's `create_app` plus a Flask
`before_request` hook that runs after MLflow's own (and, for the MCP routes that FastAPI serves
itself, a middleware inside MLflow's): those creates answer 403 unless the user is a writer,

    the admin, or a user whose permission on *every* experiment (resource `experiment`, id `*`)
    is EDIT or MANAGE,

as MLflow resolves it from its auth store on each request (the user's grants through all their
roles, DENY winning, `default_permission` as the floor: `mlflow.server.auth.authorize`). A user
the admin adds later, or grants EDIT on experiment `*` (UI, or
`/api/3.0/mlflow/users/permissions/grant`), counts at once, without a restart. Everything else
(runs, logging into an existing experiment, reads) is left to MLflow's per-resource checks: a
READ user, who can neither create an experiment nor edit one, writes no run anywhere.

Every Flask answer carries `X-Backprop-Lab-Server: $BACKPROP_LAB_SERVER_ID`, by which the
starting script knows that the server answering is the one it started, with this hook loaded.
mlflow_server.py declares `create_app` as the `mlflow.app` entry point `backprop-lab-auth`.

Written against MLflow 3.17: `authorize`, `Requirement` and the route table are its internals,
checked at import, so an MLflow without them fails the start instead of serving without the rule.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

import mlflow.server
from flask import Flask, Response, make_response, request
from mlflow.server import auth
from mlflow.server.auth.permissions import RESOURCE_TYPE_EXPERIMENT, RESOURCE_TYPE_WORKSPACE
from mlflow.server.auth.requirements import Requirement
from mlflow.server.auth.routes import DEMO_GENERATE
from mlflow.server.mcp_server_api import get_mcp_server_api_route_prefixes
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response as StarletteResponse

# MLflow's validators of creates that any logged-in user passes while workspaces are off.
CREATE_VALIDATORS = (
    auth.validate_can_create_experiment,
    auth.validate_can_create_registered_model,  # registered models and prompts
    auth.validate_can_create_gateway_secret,
    auth.validate_can_create_gateway_model_definition,
    auth.validate_can_create_gateway_endpoint,
)
# (path, method) of every route they guard (REST /api/... and the UI's /ajax-api/... twin).
WRITER_ONLY = {route for route, validator in auth.BEFORE_REQUEST_VALIDATORS.items()
               if validator in CREATE_VALIDATORS} | {(DEMO_GENERATE, "POST")}
# The MCP server registry is served by FastAPI itself, not through Flask: POST <prefix> creates.
MCP_CREATE = set(get_mcp_server_api_route_prefixes())
HEADER = "X-Backprop-Lab-Server"
for _twin in ("/api/2.0/mlflow/experiments/create", "/ajax-api/2.0/mlflow/experiments/create"):
    if not any(path.endswith(_twin) for path, _ in WRITER_ONLY):
        raise ImportError(f"auth_app: MLflow has no create-experiment validator for {_twin}: it "
                          "is not the MLflow (3.17) that auth_app was written for")


def is_writer(username: str) -> bool:
    """The admin, or EDIT/MANAGE on every experiment (as MLflow resolves grants)."""
    if auth.store.get_user(username).is_admin:
        return True
    return auth.authorize(username, (RESOURCE_TYPE_WORKSPACE, "*"),
                          [Requirement(RESOURCE_TYPE_EXPERIMENT, "*", "update")])


def writers_only() -> Response | None:
    """before_request, after MLflow's (which has authenticated the user and found nothing
    against the request): refuse a create in WRITER_ONLY to a user who is not a writer."""
    if (request.path, request.method) not in WRITER_ONLY:
        return None
    authorization = auth.authenticate_request()  # cached by MLflow (auth_cache_ttl_seconds)
    if isinstance(authorization, Response):
        return authorization
    username = authorization.username or ""
    if is_writer(username):
        return None
    answer = make_response(refusal(username))
    answer.status_code = 403
    return answer


def refusal(username: str) -> str:
    return (f"Permission denied: user {username!r} may browse but not create here (only the admin "
            "and users with EDIT or MANAGE on every experiment create experiments, models, "
            "prompts, gateway resources, MCP servers or demo data)")


async def mcp_writers_only(request: Request, call_next: RequestResponseEndpoint
                           ) -> StarletteResponse:
    """The same rule for the MCP servers FastAPI serves; it runs inside MLflow's permission
    middleware, which has authenticated the user and put the name in request.state."""
    if request.method == "POST" and request.url.path in MCP_CREATE:
        username = getattr(request.state, "username", None)
        if not username or not await run_in_threadpool(is_writer, username):
            return PlainTextResponse(refusal(username or ""), status_code=403)
    return await call_next(request)


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
    with open(__file__) as me:
        fcntl.flock(me, fcntl.LOCK_EX)
        app = auth.create_app(flask_app)
    flask_app.before_request(writers_only)
    flask_app.after_request(mark)
    if not isinstance(app, Flask):  # FastAPI (uvicorn): innermost, after MLflow's middleware
        app.user_middleware.append(Middleware(BaseHTTPMiddleware, dispatch=mcp_writers_only))
    return app
