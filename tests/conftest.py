"""Shared fixtures. Tests need nothing outside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def one_thread():
    """One intra-op thread for the test, restored after: training steps on a shared 2-core
    machine run ~10x slower when torch's OpenMP threads spin against other load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _private_fingerprint_cache(tmp_path_factory):
    """The digest cache of rcnn_cli.fingerprints in a folder of the test run, not the user's ~/.cache
    (subprocesses of the tests inherit it through the environment)."""
    import os

    before = os.environ.get("RCNN_CACHE_DIR")
    os.environ["RCNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("rcnn_cache"))
    yield
    if before is None:
        os.environ.pop("RCNN_CACHE_DIR", None)
    else:
        os.environ["RCNN_CACHE_DIR"] = before
