"""The data a run trained and was scored on, logged as MLflow dataset inputs.

The runs table's Dataset column and the run page show them: name, digest, context (`training`,
`validation`, `test`, or for a run scored on cells one entry naming the folds), source (the file
path, or for a built-in set its name) and schema (the columns typed as the raw file has them).

The entities are those `mlflow.data.from_pandas` would make (same source JSON, schema and profile
format), built from the arrays directly, which keeps a sweep's jobs fast (`entity`). The digest is
ours, not MLflow's (md5 of the first 10,000 rows): the first 32 hex digits of the
project's sha256 fingerprint of exactly those rows (`data.load.fingerprint`, names and float64
bytes); the full sha256 is the input's tag `sha256`. MLflow keeps at most 36 characters of a
digest. `rerun` reads the digests back (`logged_digests`) and compares them with the data as
loaded and split now. Everything goes to the store in one `log_inputs` call per run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop_lab.data.load import Dataset, fingerprint
from backprop_lab.tracking.store import Run

CONTEXT_TAG = "mlflow.data.context"  # MLflow's own key: the UI shows it beside the dataset
SHA_TAG = "sha256"
DIGEST_LENGTH = 32


@dataclass(frozen=True)
class Part:
    """Rows of the data set used one way: `context` names how (training, validation, ...)."""

    context: str
    X: np.ndarray
    y: np.ndarray


def sha256(ds: Dataset, part: Part) -> str:
    return fingerprint(part.X, part.y, ds.feature_names, ds.target_names)


def digest(ds: Dataset, part: Part) -> str:
    """What MLflow shows as the part's digest: the start of its sha256 fingerprint."""
    return sha256(ds, part)[:DIGEST_LENGTH]


def schema(ds: Dataset) -> str:
    """The columns as the raw file has them (integer features `long`, as the served model's
    signature declares them), the targets last, in MLflow's schema JSON."""
    from mlflow.types import ColSpec, Schema

    kinds = [("long" if ds.feature_dtypes.get(n, "float64").startswith("int") else "double", n)
             for n in ds.feature_names] + [("double", n) for n in ds.target_names]
    return json.dumps({"mlflow_colspec": Schema([ColSpec(k, n) for k, n in kinds]).to_dict()})


def source(ds: Dataset) -> tuple[str, str]:
    """(source type, source JSON) as MLflow's own sources write them: a local file by its path
    (`local`, MLflow's LocalArtifactDatasetSource), a built-in set by name (`code`, a
    CodeDatasetSource tagged `builtin`, e.g. `sklearn:diabetes`); `mlflow.data.get_source`
    reads either back."""
    if ds.source.startswith("sklearn:"):
        return "code", json.dumps({"tags": {"builtin": ds.source}})
    return "local", json.dumps({"uri": ds.source})


def entity(ds: Dataset, part: Part, name: str) -> Any:
    """The MLflow dataset entity of one part: what `mlflow.data.from_pandas(...)` builds, made
    from the arrays we hold (from_pandas would import mlflow.models, ~0.5-1 s per process, and
    infer the schema of a DataFrame per part: a sweep's jobs pay neither)."""
    from mlflow.entities import Dataset as DatasetEntity

    kind, where = source(ds)
    profile = {"num_rows": len(part.X), "num_elements": int(part.X.size + part.y.size)}
    return DatasetEntity(name=name, digest=digest(ds, part), source_type=kind, source=where,
                         schema=schema(ds), profile=json.dumps(profile))


def log_datasets(run: Run, ds: Dataset, parts: Sequence[Part], name: str) -> None:
    """Log every non-empty part as a dataset input of `run`, in one call."""
    from mlflow.entities import DatasetInput, InputTag

    inputs = [DatasetInput(entity(ds, part, name), [InputTag(CONTEXT_TAG, part.context),
                                                    InputTag(SHA_TAG, sha256(ds, part))])
              for part in parts if len(part.X)]
    if inputs:
        run.log_inputs(inputs, what="dataset inputs: " + ", ".join(p.context for p in parts))


def logged_digests(run: Any) -> dict[str, str]:
    """{context: digest} of a run (an `mlflow.entities.Run`) as logged; {} for a run logged
    before datasets were."""
    found: dict[str, str] = {}
    for item in getattr(run.inputs, "dataset_inputs", None) or []:
        tags: Mapping[str, str] = {t.key: t.value for t in item.tags}
        if CONTEXT_TAG in tags:
            found[tags[CONTEXT_TAG]] = item.dataset.digest
    return found
