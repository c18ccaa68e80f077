"""Fixtures of the model tests: one thread, a fixed seed, a tiny TriBERT and its inputs."""
from __future__ import annotations

import pytest
import torch

from model.tribert import TriBERT
from model_inputs import TINY, make_batch


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_model() -> TriBERT:
    return TriBERT(**TINY)


@pytest.fixture
def batch() -> dict:
    return make_batch()
