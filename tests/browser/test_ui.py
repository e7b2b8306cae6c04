"""The MLflow UI in a real browser (headless Chromium driven by selenium), as a user meets it:
a small sweep with diverging jobs, `compare`, then the server `make ui` starts, on a free port.

The URL `make ui` prints opens the runs table (the model-training view, not the GenAI one); the
sweep's parent is there and expands to its children; the parent's description renders the
comparison with working links; the interactive report renders inside the artifact viewer.
Screenshots go to <tmp_path>/screenshots/ (the path is printed; `pytest -s` shows it):
  01-runs-table.png          the runs table as the printed URL opens it: the sweep's parent
  02-runs-expanded.png       the parent expanded: its four children
  03-parent-description.png  the parent's page, its description (best job, ranked table,
                             frontier, the jobs that did not finish)
  04-report-artifact.png     compare/report.html in the artifact viewer (three Plotly charts)
  05-best-run.png            the best child's page, reached by the description's link
Chromium missing: skipped locally, a failure in CI (CI=true), where `.ci/run` installs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from backprop_lab.experiments.sweep.compare import compare
from backprop_lab.pipeline.config import CompareCommand
from backprop_lab.tracking import ui
from tests.conftest import compose_command
from tests.experiments.sweep.test_sweeps import DIVERGING, run_sweep
from tests.procs import free_port, stop_group

WAIT = 120  # seconds for the React UI to show an element (a few on an idle machine)


def browser_paths() -> tuple[str, str]:
    """Debian's chromium and chromium-driver, and selenium; skipped (failed in CI) without."""
    found = [shutil.which(n) for n in ("chromium", "chromedriver")]
    missing = [n for n, p in zip(("chromium", "chromedriver"), found) if p is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        why = (f"no {', '.join(missing)}: apt-get install -y chromium chromium-driver "
               "(.ci/run does)")
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(why)
        pytest.skip(why)
    return str(found[0]), str(found[1])


@pytest.fixture
def swept(template_db: Path, tmp_path: Path) -> dict[str, Any]:
    """A 2 lr x 2 depth sweep (lr 10 diverges) in a temporary store, compared."""
    found = run_sweep(tmp_path, template_db, *DIVERGING)
    compare(compose_command("compare", [f"tracking.uri={found['uri']}",
                                        f"out={tmp_path / 'compare'}"], CompareCommand))
    client = MlflowClient(found["uri"])
    experiments = [e.experiment_id for e in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "tags.sweep_role = 'parent'")
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return {**found, "parent": parent, "children": children,
            "best": parent.data.tags["best_run_id"]}


@pytest.fixture
def server(swept: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`python -m pipelines.ui port=<free> tracking.uri=...` (what `make ui` runs): the URL it
    prints, once the server answers /health. Stopped by its process group."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.ui", f"port={port}", f"tracking.uri={swept['uri']}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),
                              daemon=True)  # type: ignore[union-attr]
    reader.start()
    base = ui.base_url("127.0.0.1", port)
    try:
        deadline = time.monotonic() + 240  # ~10 s on an idle machine, a minute when loaded
        while True:
            assert process.poll() is None, "".join(lines)[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
                    if answer.read().decode().strip() == "OK":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the UI did not answer /health in 240 s"
            time.sleep(0.5)
        printed = re.search(r"http://\S+", "".join(lines))
        assert printed, "".join(lines)
        yield {"url": printed.group(0), "base": base, "output": lines}
    finally:
        stop_group(process)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1600,1100", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def evidence(browser: Any, folder: Path) -> Iterator[None]:
    """On failure, the page as it was: failure.png and failure.html in `folder`."""
    try:
        yield
    except BaseException:
        browser.save_screenshot(str(folder / "failure.png"))
        (folder / "failure.html").write_text(browser.page_source)
        print(f"failure evidence: {folder}/failure.png, failure.html")
        raise


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_browser_skips_here_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch,
                                                      ci: str) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome, match="no chromium, chromedriver: apt-get install"):
        browser_paths()


@pytest.mark.slow
def test_the_ui_shows_the_sweep_and_its_description(
        swept: dict[str, Any], server: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nscreenshots: {shots}")
    wait = WebDriverWait(browser, WAIT)
    parent, children = swept["parent"], swept["children"]
    eid, pid = parent.info.experiment_id, parent.info.run_id
    assert server["url"] == ui.runs_url(server["base"], eid)

    def find(xpath: str) -> Any:
        return wait.until(shown.visibility_of_element_located((By.XPATH, xpath)))

    def row_link(run_id: str) -> str:
        return f"//div[@role='row']//a[contains(@href, '/runs/{run_id}')]"

    with evidence(browser, tmp_path):
        # 1. the printed URL: the runs table, with the sweep's parent (its children collapsed)
        browser.get(server["url"])
        assert find(row_link(pid)).text == parent.info.run_name
        assert find("//*[normalize-space()='Model training']")
        for close in browser.find_elements(  # the assistant's chat panel: more room for runs
                By.CSS_SELECTOR, "button[data-component-id='mlflow.assistant.chat_panel.close']"):
            close.click()
        browser.save_screenshot(str(shots / "01-runs-table.png"))

        # 2. expanded: every child under it
        expand = (f"//div[@role='row'][.//a[contains(@href, '/runs/{pid}')]]"
                  "//button[contains(@data-component-id, 'runnamecellrenderer')]")
        browser.find_element(By.XPATH, expand).click()
        for child in children:
            assert find(row_link(child.info.run_id)).text == child.info.run_name
        assert len(children) == 4
        browser.save_screenshot(str(shots / "02-runs-expanded.png"))

        # 3. the parent's page: its description renders the comparison
        browser.get(ui.run_url(server["base"], eid, pid))
        heading = find("//*[normalize-space()='Description']")
        more = browser.find_elements(By.XPATH, "//button[normalize-space()='Show more']")
        if more:
            more[0].click()
        best = swept["best"]
        best_links = wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, f"a[href*='/runs/{best}?workflowType=machine_learning']"))
        assert len(best_links) >= 2  # the best job, and best_run_id
        assert find("//strong[normalize-space()='Best:']")
        assert find("//th[normalize-space()='largest lr that trained stably']")  # frontier table
        assert find("//th[normalize-space()='val_mse mean']")  # the ranked table
        unfinished = find("//*[normalize-space()='Did not finish']/ancestor::p"
                          "/following-sibling::ul[1]")
        diverged = sorted(c.info.run_name for c in children if c.info.status == "FAILED")
        assert sorted(re.findall(r"lr=10,depth=\d", unfinished.text)) == diverged
        assert "DIVERGED at epoch" in unfinished.text
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", heading)
        time.sleep(0.5)
        browser.save_screenshot(str(shots / "03-parent-description.png"))

        report = browser.find_element(By.XPATH, "//a[normalize-space()='compare/report.html']")
        assert report.get_attribute("href") == ui.run_url(
            server["base"], eid, pid, "artifacts/compare/report.html")

        # 4. the description's link to the interactive report: three Plotly charts, offline,
        # in the artifact viewer
        browser.get(report.get_attribute("href"))
        frame = wait.until(shown.presence_of_element_located((By.TAG_NAME, "iframe")))
        browser.switch_to.frame(frame)
        charts = ".js-plotly-plot .main-svg"
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, charts)) >= 3)
        browser.switch_to.default_content()
        browser.save_screenshot(str(shots / "04-report-artifact.png"))

        # 5. the description's link to the best job opens its run (in a new tab: MLflow's
        # descriptions link with target=_blank; the test follows the resolved address instead)
        browser.get(ui.run_url(server["base"], eid, pid))
        link = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"a[href*='/runs/{best}?']"))
        assert link[0].get_attribute("href") == ui.run_url(server["base"], eid, best)
        browser.get(link[0].get_attribute("href"))
        best_name = next(c.info.run_name for c in children if c.info.run_id == best)
        find(f"//*[self::h1 or self::h2 or self::span][normalize-space()='{best_name}']")
        assert f"/runs/{best}" in browser.current_url
        browser.save_screenshot(str(shots / "05-best-run.png"))
        # its dataset inputs (issue 24): "boston (<digest>) Training +2" (validation, test)
        digests = {i.dataset.digest for i in MlflowClient(swept["uri"]).get_run(
            best).inputs.dataset_inputs}
        assert len(digests) == 3
        wait.until(lambda d: any(f"boston ({digest})" in d.page_source for digest in digests))
        assert sorted(p.name for p in shots.iterdir()) == [
            "01-runs-table.png", "02-runs-expanded.png", "03-parent-description.png",
            "04-report-artifact.png", "05-best-run.png"]
