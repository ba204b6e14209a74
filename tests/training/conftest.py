"""Fixtures for the training tests."""

import pytest

from rcnn_cli.proposals.jitter import write_jittered_proposals


@pytest.fixture(autouse=True)
def _every_training_test_on_one_thread(one_thread: None) -> None:
    """Every training test uses the ``one_thread`` fixture of tests/conftest.py."""


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """A small synthetic VOC dataset (shapes) with a proposals folder over all its images."""
    from rcnn_cli.data import make_synthetic_voc, open_dataset

    root = tmp_path_factory.mktemp("shapes")
    make_synthetic_voc(root / "voc", 16, seed=0, image_size=(128, 96), min_size=20)
    every = open_dataset(root / "voc")
    write_jittered_proposals(root / "proposals", every.records, num_random=60)
    return root
