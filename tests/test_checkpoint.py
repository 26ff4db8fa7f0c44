import pytest
import torch

from interlearn.checkpoint import has_checkpoint, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from interlearn.errors import CheckpointError
from interlearn.state import flatten_state, unflatten_state


def test_roundtrip(tmp_path):
    save_checkpoint(tmp_path / "c", {"w": torch.arange(4.0)}, {"epoch": 3, "cfg": {"lr": 0.1}})
    t, meta = load_checkpoint(tmp_path / "c")
    assert torch.equal(t["w"], torch.arange(4.0)) and meta == {"epoch": 3, "cfg": {"lr": 0.1}}
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_missing_and_corrupt(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, {"w": torch.zeros(1)}, {})
    (tmp_path / "tensors.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="not JSON-serializable"):
        save_checkpoint(tmp_path / "x", {}, {"bad": object()})


def test_rng_roundtrip():
    state = rng_state()
    a = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(a, torch.rand(3))


def test_optimizer_state_flatten_roundtrip():
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.AdamW([p], lr=0.1)
    p.grad = torch.ones(3)
    opt.step()
    skel, tensors = flatten_state(opt.state_dict(), "optim")
    back = unflatten_state(skel, tensors)
    opt2 = torch.optim.AdamW([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    opt2.load_state_dict(back)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert has_checkpoint is not None
