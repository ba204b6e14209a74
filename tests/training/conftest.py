"""Fixtures for the training tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine more threads spin and run ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """A small synthetic VOC dataset (shapes) with a proposals folder over all its images."""
    from rcnn_cli.data import make_synthetic_voc, open_dataset
    from support import training as train_helpers

    root = tmp_path_factory.mktemp("shapes")
    make_synthetic_voc(root / "voc", 16, seed=0, image_size=(128, 96), min_size=20)
    every = open_dataset(root / "voc")
    train_helpers.write_proposals(root / "proposals", every.records, num_random=60)
    return root
