"""Shared test set-up: one thread (2-core CI), deterministic seeds, headless plots."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_shakespeare_dir(tmp_path):
    """A data folder with a Tiny-Shakespeare-layout file: three roles of distinct vocabularies
    (each test line adds one unseen ``zz?`` word)."""
    import gzip

    folder = tmp_path / "shakespeare"
    folder.mkdir()
    speeches = []
    for k in range(14):
        for who, line in (
            ("ALPHA", "to be or not to be that is the question"),
            ("BETA", "the quality of mercy is not strained"),
            ("GAMMA", "all the world is a stage and all the men and women merely players"),
        ):
            speeches.append(f"{who}:\n{line}, o'er zz{'abcdefghijklmnopqrstuvwxyz'[k % 26]}!\n{line}\n\n")
    with gzip.open(folder / "tinyshakespeare_input.txt.gz", "wt") as fh:
        fh.write("".join(speeches))
    return tmp_path
