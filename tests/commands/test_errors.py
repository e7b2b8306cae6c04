"""Every error a user can cause prints one `error:` line, no traceback, and exits 2 (bad config,
argument or input file) or 1 (a run that failed), from all four commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def assert_one_error_line(out, status: int, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert out.returncode == status, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    lines = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("override", "needles"), [
    ("train.nope=1", ["train.nope"]),                      # unknown key
    ("train.epochs=abc", ["train.epochs", "abc"]),           # wrong type
    ("train.epochs=1e9", ["train.epochs", "1e9"]),           # a float where an int goes
    ("model=nope", ["model=nope", "mlp", "tutorial"]),      # unknown group option
    ("train.lr=-1", ["train.lr", "> 0"]),                    # out of range
    ("train.lr=inf", ["train.lr", "finite"]),
    ("train.lr=[1", ["train.lr=[1"]),                        # not an override at all
])
def test_bad_train_overrides_exit_2(override: str, needles: list[str], store_uri: str,
                                    tmp_path: Path) -> None:
    out = run_cli("pipelines.train", override, f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, *needles)


def test_bad_input_files_exit_2_before_any_run(store_uri: str, tmp_path: Path) -> None:
    bad = tmp_path / "houses.csv"
    bad.write_text("size,rooms,price\n50,2,100\n60,abc,120\n70,4,140\n")
    out = run_cli("pipelines.train", "data=csv", f"data.path={bad}", "data.target=price",
                  f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, "houses.csv", "rooms", "line 3")
    out = run_cli("pipelines.train", f"model.init_from={tmp_path / 'missing.npz'}",
                  f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, "missing.npz")
    (tmp_path / "text.npz").write_text("not a weights file")
    out = run_cli("pipelines.train", f"model.init_from={tmp_path / 'text.npz'}",
                  f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, "text.npz", "not an .npz archive")
    assert "pickle" not in out.stderr  # never advise unsafe loading
    (tmp_path / "one.csv").write_text("a,b,y\n1,2,3\n")
    out = run_cli("pipelines.train", "data=csv", f"data.path={tmp_path / 'one.csv'}",
                  "data.target=y", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, "one.csv", "1 row")
    (tmp_path / "semi.csv").write_text("a;b;y\n1;2;3\n4;5;6\n")
    out = run_cli("pipelines.train", "data=csv", f"data.path={tmp_path / 'semi.csv'}",
                  "data.target=y", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, "semi.csv", "separated by semicolons")
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("backprop-lab")
    assert experiment is None or not client.search_runs([experiment.experiment_id])


def test_a_diverged_run_exits_1(store_uri: str, tmp_path: Path) -> None:
    out = run_cli("pipelines.train", "train=gd", "train.lr=10", "train.epochs=20",
                  "tracking.log_model=false", f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 1, "diverged")


@pytest.mark.parametrize(("command", "args", "needles"), [
    ("pipelines.compare", ["sweep_id=0123abcd"], ["0123abcd"]),
    ("pipelines.compare", ["tracking.experiment=nope"], ["nope"]),
    ("pipelines.compare", ["bogus=1"], ["bogus"]),
    ("pipelines.rerun", ["run_id=0123abcd"], ["0123abcd"]),
    ("pipelines.rerun", [], ["run_id", "sweep_id"]),
    ("pipelines.evaluate", [], ["run_id"]),
    ("pipelines.evaluate", ["run_id=0123abcd"], ["0123abcd"]),
    ("pipelines.evaluate", ["run_id=x", "split=sideways"], ["split", "sideways"]),
])
def test_other_commands_exit_2_on_bad_arguments(command: str, args: list[str],
                                                needles: list[str], store_uri: str,
                                                tmp_path: Path) -> None:
    out = run_cli(command, *args, f"tracking.uri={store_uri}", cwd=tmp_path)
    assert_one_error_line(out, 2, *needles)


@pytest.mark.parametrize("command", ["train", "compare", "rerun", "evaluate"])
def test_help_works_on_every_command(command: str, tmp_path: Path) -> None:
    out = run_cli(f"pipelines.{command}", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "tracking" in out.stdout
