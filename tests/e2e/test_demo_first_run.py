"""A newcomer's first `dreamcore demo`: run as a user runs it (the installed command in a fresh process, a fresh
Prefect home, no PREFECT_API_URL, no offline switches), it prints no ERROR and no traceback, reaches nothing
beyond this machine (a socket guard in every process of the run refuses and records it), and ends with a short
summary naming the LoRA, the report and the subject-fidelity numbers the report shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUARD_SITE = Path(__file__).resolve().parent / "network_guard_site"
FIDELITY = ("DINO", "CLIP-I", "CLIP-T", "PRES", "DIV")


@pytest.mark.slow
def test_the_demo_prints_no_error_reaches_no_network_and_ends_with_a_summary(tmp_path: Path) -> None:
    network_log = tmp_path / "network.log"
    # What the test suite sets for itself (offline hub, Prefect analytics off, quiet logs) is not a user's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HF_HUB_OFFLINE"))}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONPATH": f"{GUARD_SITE}{os.pathsep}{REPO}",
            "DREAMCORE_TEST_NETWORK_LOG": str(network_log)}
    command = [str(Path(sys.executable).parent / "dreamcore"), "demo", "--workdir", str(tmp_path / "demo")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert not network_log.exists(), network_log.read_text()[:5000]
    for forbidden in ("ERROR", "Traceback", "do not exist - skipping acquisition"):
        assert forbidden not in output, (forbidden, output[-5000:])
    assert "no 'dreamcore-gpu' concurrency limit on this Prefect server" in done.stderr

    summary = done.stdout.splitlines()
    assert len(summary) <= 12, done.stdout  # a summary, not the stages' JSON
    lora = next(Path(line.split(": ", 1)[1]) for line in summary if line.strip().startswith("diffusers_lora: "))
    assert (lora / "pytorch_lora_weights.safetensors").is_file()
    report = next(line for line in summary if line.startswith("report: ")).split()[1]
    assert Path(report).is_file() and report.endswith("report.html")
    final = next(line for line in summary if line.strip().startswith("final: "))
    assert all(f"{label} " in final for label in FIDELITY), final
    markdown = Path(report).with_suffix(".md").read_text()
    assert all(label in markdown for label in FIDELITY)
