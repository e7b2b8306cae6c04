"""The runs in the browser: python -m pipelines.ui [port=5000] [host=...] [tracking.uri=...]

Prints the URL that opens the experiment's runs table in the MLflow UI's model-training view
(MLflow 3.17 would otherwise open its GenAI view, "no traces"), then replaces itself with
`mlflow ui` on the store: `make ui [PORT=5001]` runs this. A store without runs is refused with
what to do first. For a tracking server (`tracking=server` or an http(s) `tracking.uri`) it
only prints the URL on that server.
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from pipelines.cli import run_command, task


@hydra.main(version_base="1.3", config_path="../conf", config_name="ui")
@task()
def main(cfg: DictConfig) -> None:
    from backprop_lab.tracking import ui
    from backprop_lab.tracking.store import open_client, resolve_uri

    uri = resolve_uri(cfg.tracking.uri)
    experiment = cfg.tracking.experiment
    remote = uri.startswith(("http://", "https://"))
    if not remote and not ui.store_exists(uri):
        raise ui.NoRuns(f"no runs yet: there is no store at {uri}; train one first: `make run` "
                        "(or python -m pipelines.train)")
    experiment_id = ui.experiment_to_open(open_client(uri), uri, experiment)
    base = uri if remote else ui.base_url(str(cfg.host), int(cfg.port))
    print(f"The runs of experiment {experiment or experiment_id!r} (model-training view):\n"
          f"  {ui.runs_url(base, experiment_id)}", flush=True)
    if remote:
        return
    print(f"serving {uri} there (Ctrl-C stops it); the first page takes ~10 s", flush=True)
    command = ui.server_command(uri, str(cfg.host), int(cfg.port))
    os.execv(command[0], command)


def cli() -> None:
    run_command(main)


if __name__ == "__main__":
    cli()
