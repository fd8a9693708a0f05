"""Tiny model folders written once per test session, shared by the dreamcore.models tests."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """kind -> folder of every tiny model, seed 0 (treat as read-only: copy before changing)."""
    from dreamcore.models import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny-models"))
