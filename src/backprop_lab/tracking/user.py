"""Whose run it is: the `mlflow.user` tag, from which MLflow takes a run's `user_id` (the UI's
User column).

`MlflowClient.create_run`, which `Run.start` uses, records `user_id` "unknown" and no
`mlflow.user` unless the tags name one (only the fluent `mlflow.start_run` adds the OS user).
A run on this machine belongs to the OS user, so `Run.start` adds it here. On a tracking server
with logins the OS user means nothing to the team: server/auth_app.py replaces it with the login
that created the run and refuses to let it be changed later.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping

USER_TAG = "mlflow.user"  # mlflow.utils.mlflow_tags.MLFLOW_USER, without importing MLflow


def os_user() -> str:
    """The login name of this process (USER/LOGNAME, else the password database); "unknown"
    where there is none (a container's uid without a passwd entry)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def with_user(tags: Mapping[str, str]) -> dict[str, str]:
    """`tags` plus `mlflow.user` = the OS user, unless `tags` already name the user."""
    return {USER_TAG: os_user(), **tags}
