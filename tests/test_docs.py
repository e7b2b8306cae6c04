"""Every command the README and docs/ show is one a user can type: the config it composes is
valid, every job of a sweep included.

The commands are read from the Markdown itself (shell blocks, and `python -m pipelines...`
spans in the text), so a renamed key, group option, launcher, make target or bench script
fails here. A `pipelines.<command>` line is composed by Hydra exactly as the command composes
it (its own config, the overrides, the `hydra/launcher` and sweeper it names) and checked by
the same typed schema and range checks as a run; a multirun is expanded into its jobs
(the command line's comma lists and the preset's `hydra.sweeper.params`) and every job is
checked. What the commands then do is tested end to end in tests/commands/ and tests/experiments/.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep
from omegaconf import OmegaConf

import hydra_plugins.backprop_lab_launcher.racing_sweeper  # noqa: F401  (hydra/sweeper=racing)
import hydra_plugins.backprop_lab_launcher.stacked_launcher  # noqa: F401  (hydra/launcher=stacked)
from backprop_lab.paths import CONF_DIR, PROJECT_ROOT
from backprop_lab.pipeline import compose as composing
from backprop_lab.pipeline.config import (
    CleanupCommand,
    CompareCommand,
    EvaluateCommand,
    RerunCommand,
    SyncCommand,
)
from pipelines.plugins import find_launcher

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
COMMANDS = {"train": ("config", None), "compare": ("compare", CompareCommand),
            "rerun": ("rerun", RerunCommand), "evaluate": ("evaluate", EvaluateCommand),
            "cleanup": ("cleanup", CleanupCommand), "ui": ("ui", None),
            "sync": ("sync", SyncCommand)}
PLACEHOLDER = "0123456789abcdef0123456789abcdef"  # for <id>
MAX_JOBS = 40
SHELL_TOOLS = {"cp", "sqlite3", "mlflow"}  # not ours: only named in recovery steps


def shell_lines(text: str) -> list[str]:
    """The command lines of the ```bash blocks (continuations joined, comments dropped) and
    the inline `python -m pipelines...` spans."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [ln.split(" #")[0] for ln in joined.splitlines()]
    lines += re.findall(r"`((?:\.venv/bin/)?python -m pipelines\.[a-z][^`]*)`", text)
    return [" ".join(ln.split()) for ln in lines if ln.strip() and not ln.startswith("#")]


def documented() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for line in shell_lines(path.read_text()):
            found.append((path.relative_to(PROJECT_ROOT).as_posix(), line))
    return found


def words(line: str) -> list[str]:
    """The command's words without environment assignments, `[optional ...]` and placeholders."""
    line = re.sub(r"\s\[[^\]]*=[^\]]*\]", "", line).replace("<id>", PLACEHOLDER)
    parts = shlex.split(line)
    while parts and re.match(r"^[A-Z_]+=", parts[0]):
        parts.pop(0)
    return parts


def sweep_values(override: str) -> list[str]:
    """`key=a,b,c` -> the three single overrides; an interval (a search) -> its two ends."""
    parsed = OverridesParser.create().parse_override(override)
    key = parsed.get_key_element()
    if not parsed.is_sweep_override():
        return [override]
    if parsed.is_choice_sweep() or parsed.is_range_sweep():
        return [f"{key}={v}" for v in parsed.sweep_string_iterator()]
    interval = parsed.value()
    assert isinstance(interval, IntervalSweep), override
    return [f"{key}={interval.start}", f"{key}={interval.end}"]  # a search's two ends


def compose_all(config_name: str, overrides: list[str], multirun: bool) -> list[OmegaConf]:
    """The config of every job the command line would run."""
    find_launcher()  # hydra/launcher=stacked, as the commands do
    GlobalHydra.instance().clear()
    composing.register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        plain = [o for o in overrides if not ("," in o.split("=", 1)[-1] and multirun)]
        first = compose(config_name, overrides=plain, return_hydra_config=True)
        dims: dict[str, list[str]] = {}
        if multirun:
            for key, value in (first.hydra.sweeper.get("params") or {}).items():
                dims[key] = sweep_values(f"{key}={value}")
            for o in overrides:
                if o not in plain:
                    dims[o.split("=", 1)[0]] = sweep_values(o)
        jobs = [list(c) for c in itertools.product(*dims.values())]
        assert len(jobs) <= MAX_JOBS, f"{len(jobs)} jobs"
        user = [o for o in plain if not o.startswith(("hydra/", "hydra."))]
        return [compose(config_name, overrides=[*user, *job]) for job in jobs]


@pytest.mark.parametrize(("doc", "line"), documented(), ids=lambda v: str(v)[:70])
def test_a_documented_command_is_valid(doc: str, line: str) -> None:
    parts = words(line)
    if parts[0] == "make":
        targets = re.findall(r"^([a-z]+):", (PROJECT_ROOT / "Makefile").read_text(), re.M)
        assert parts[1] in targets, f"{doc}: no make target {parts[1]!r}"
        args = [p.split("=", 1)[1] for p in parts[2:] if p.startswith("ARGS=")]
        if parts[1] == "run" and args:
            for cfg in compose_all("config", shlex.split(args[0]), multirun=False):
                composing.to_config(cfg)
        return
    if Path(parts[0]).name in SHELL_TOOLS:  # a recovery step in docs/reliability.md
        return
    if parts[0].endswith("python") and parts[1].startswith("bench/"):
        assert (PROJECT_ROOT / parts[1]).is_file(), f"{doc}: no {parts[1]}"
        return
    assert parts[0].endswith("python") and parts[1] == "-m", f"{doc}: unknown command {line!r}"
    command = parts[2].removeprefix("pipelines.")
    assert command in COMMANDS, f"{doc}: no command pipelines.{command}"
    config_name, schema = COMMANDS[command]
    rest = parts[3:]
    multirun = "-m" in rest
    overrides = [p for p in rest if p != "-m"]
    configs = compose_all(config_name, overrides, multirun)
    assert configs
    for cfg in configs:
        if command == "train":
            composing.to_config(cfg)
        elif schema is not None:
            composing.to_command(cfg, schema)


def test_the_docs_show_commands_and_link_each_other() -> None:
    assert len(documented()) >= 30
    for path in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_the_readme_starts_with_the_two_commands_and_the_sweep() -> None:
    """The first screen (50 lines) holds set-up and test, the sweep to run, and the UI."""
    first = "\n".join((PROJECT_ROOT / "README.md").read_text().splitlines()[:50])
    for needed in ("make run", "make test", "sweep=lr_depth", "pipelines.compare", "make ui"):
        assert needed in first


def test_commands_are_found_in_text() -> None:
    assert shell_lines("```bash\nA=1 \\\n  python -m pipelines.train x=1  # c\n```\n") == [
        "A=1 python -m pipelines.train x=1"]
    assert words("python -m pipelines.compare [sweep_id=<id>]") == [
        "python", "-m", "pipelines.compare"]
    assert sweep_values("train.lr=1,2") == ["train.lr=1", "train.lr=2"]
    assert Path(DOCS[0]).name == "README.md"
