"""MLflow's basic-auth app plus one rule: only writers create. Served by server/mlflow_server.py.

MLflow's basic auth lets every logged-in user create an experiment (and then own it, MANAGE),
a registered model or prompt, a gateway secret/model/endpoint (an endpoint creates a
`gateway/<name>` experiment) or the demo data (the "MLflow Demo" experiment), whatever
`default_permission` says. `create_app` below is MLflow's `create_app` with a Flask
`before_request` hook after MLflow's own: those creates answer 403 unless the user is a writer:

    the admin, or a user whose permission on *every* experiment (resource `experiment`, id `*`)
    is EDIT or MANAGE,

as MLflow resolves it from its auth store on each request (the user's grants through all their
roles, DENY winning, `default_permission` as the floor; `authorize` in `mlflow.server.auth`).
So a user the admin adds later, or grants EDIT on experiment `*` in the UI or through
`/api/3.0/mlflow/users/permissions/grant`, counts at once, without a restart. Everything else
(runs, logging into an existing experiment, reads) is left to MLflow's per-resource checks: a
READ user, who can neither create an experiment nor edit one, cannot write a run anywhere.

Responses carry `X-Backprop-Lab-Server: <BACKPROP_LAB_SERVER_ID>` so the starting script can
tell that the server answering is the one it started, with this hook loaded.

Written against MLflow 3.17 (`authorize`, `Requirement` and the route table are its internals):
an import or a missing route fails the server's start rather than serving without the rule.
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
HEADER = "X-Backprop-Lab-Server"


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
    answer = make_response(
        f"Permission denied: user {username!r} may browse but not create here (only the admin "
        "and users with EDIT or MANAGE on every experiment create experiments, models, gateway "
        "resources or demo data)")
    answer.status_code = 403
    return answer


def mark(response: Response) -> Response:
    response.headers[HEADER] = os.environ.get("BACKPROP_LAB_SERVER_ID", "1")
    return response


def create_app() -> Any:
    """MLflow's basic-auth app (a FastAPI app around the Flask one under uvicorn), then the hook.

    Each uvicorn worker calls this. MLflow's create_app creates the auth tables and the admin on
    first use, which `mlflow server --app-name basic-auth` does once before the workers start;
    for any other app name every worker does it, so the workers take turns (a lock on this file).
    """
    paths = {path for path, _ in WRITER_ONLY}
    for twin in ("/api/2.0/mlflow/experiments/create", "/ajax-api/2.0/mlflow/experiments/create"):
        if not any(path.endswith(twin) for path in paths):
            raise RuntimeError(f"auth_app: MLflow has no validator for {twin}: this is not the "
                               "MLflow (3.17) auth_app was written for")
    flask_app: Flask = mlflow.server.app
    with open(__file__) as me:
        fcntl.flock(me, fcntl.LOCK_EX)
        app = auth.create_app(flask_app)
    flask_app.before_request(writers_only)
    flask_app.after_request(mark)
    return app
