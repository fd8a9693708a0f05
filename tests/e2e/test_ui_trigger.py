"""A person's path through the Prefect UI: open the dreambooth deployment, see our form with its
field descriptions, start a run from it, and the run completes. Uses Debian's chromium through
Playwright; the screenshot of the form is kept under .test-artifacts/."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.settings import PREFECT_API_URL, temporary_settings

from dreamcore.config import DatasetSpec, TrainingConfig
from tests.e2e.conftest import REPO, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("DREAMCORE_TEST_ARTIFACTS", REPO / ".test-artifacts"))


async def _deployment_id(name: str):
    async with get_client() as client:
        try:
            return (await client.read_deployment_by_name(name)).id
        except Exception:
            return None


async def _flow_run_states(deployment_id) -> list[str]:
    async with get_client() as client:
        runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
        return [run.state.name for run in runs if run.state and run.state.name != "Scheduled"]


# CI must run this test: there a missing chromium is a failure, elsewhere a skip.
@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="chromium is not installed (scripts/test.sh installs it as root)"
)
def test_run_from_the_ui_form(served) -> None:
    from playwright.sync_api import sync_playwright

    server, config, process = served
    deployment_name = config.parent.parent.name[:40]
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        deployment_id = wait_for(
            lambda: asyncio.run(_deployment_id(f"dreambooth/{deployment_name}")), 120, "the served deployment"
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.ui_url}/deployments")
            page.get_by_text(deployment_name, exact=True).first.click()
            page.wait_for_url("**/deployments/deployment/**")
            page.goto(f"{server.ui_url}/deployments/deployment/{deployment_id}/run")
            page.get_by_text("Parameters", exact=True).wait_for()
            for description in (
                TrainingConfig.model_fields["model_type"].description,
                TrainingConfig.model_fields["base_model_precision"].description,
                DatasetSpec.model_fields["caption_strategy"].description,
            ):
                page.get_by_text(description, exact=True).first.wait_for(timeout=20_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "prefect-ui-run-form.png"), full_page=True)
            page.get_by_role("button", name="Submit").click()
            # After submitting, the UI leaves the /run form for the deployment's page.
            page.wait_for_url(re.compile(rf"/deployments/deployment/{deployment_id}(\?.*)?$"))
            browser.close()
        states = wait_for(
            lambda: [s for s in asyncio.run(_flow_run_states(deployment_id)) if s in ("Completed", "Failed", "Crashed")],
            240,
            "the run started from the UI to finish",
            interval=2,
        )
        assert states == ["Completed"]
