"""MLflow's Model Registry: a run's logged model as a version of a registered model, and the
alias `champion`, which a sweep points at its best job's model when that is better.

`tracking.register=NAME` is checked before anything trains (`check`: a store that has no
registry, or refuses to answer, stops the command with one `error:` line, exit 2), so that a
registration can only fail after training for a cause that arose meanwhile; then the run (or
sweep) is kept as it ended and the command exits 1 (`RegistrationFailed`). The version is made
from the model the run logged (`models:/<model_id>`): nothing is trained again.
"""

from __future__ import annotations

import logging
from typing import Any

from backprop_lab.errors import RegistrationFailed, RegistryUnavailable

CHAMPION = "champion"


def short(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def check(client: Any, uri: str, name: str) -> None:
    """Before training: the store answers a registry request. MLflow's own refusal of the name
    (e.g. a '/' or ':') is checked earlier with the config (`pipeline.config.check_tracking`)."""
    try:
        client.search_registered_models(max_results=1)
    except Exception as err:
        raise RegistryUnavailable(
            f"tracking.register={name}: the MLflow store {uri} has no usable model registry "
            f"({type(err).__name__}: {short(err)}); nothing was run") from err


def register(client: Any, name: str, model_uri: str, run_id: str, description: str,
             tags: dict[str, str] | None = None) -> str:
    """A new version of registered model `name` (created if need be) from the logged model at
    `model_uri`; its version number."""
    from mlflow.exceptions import MlflowException

    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/") else None
    quiet = logging.getLogger("mlflow.store.db.utils")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # it logs a store error's traceback: ours is one line
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as err:
            if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags,
                                              description=description, model_id=model_id)
    except Exception as err:
        raise RegistrationFailed(
            f"tracking.register={name}: registering the model of run {run_id} failed "
            f"({type(err).__name__}: {short(err)}); the run is kept as it ended") from err
    finally:
        quiet.setLevel(level)
    return str(version.version)


def champion(client: Any, name: str) -> Any | None:
    """The version alias `champion` points at, or None while it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as err:
        if err.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise


def point_champion(client: Any, name: str, version: str) -> None:
    try:
        client.set_registered_model_alias(name, CHAMPION, version)
    except Exception as err:
        raise RegistrationFailed(f"tracking.register={name}: version {version} is registered, "
                                 f"but alias {CHAMPION} could not be set ({short(err)})") from err
