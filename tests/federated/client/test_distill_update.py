"""Federated distillation: the client step distils the teacher into the student on local data."""

import pytest
import torch

from interlearn.errors import ConfigError
from interlearn.federated.api import ClientData
from interlearn.federated.client import run_client
from interlearn.federated.client.distill_update import FedDistillUpdate
from interlearn.federated.params import load_params, model_params
from interlearn.models.char_lstm import char_lstm, ondevice_char_lstm

V = 12


def test_local_distillation_moves_the_student_toward_the_teacher():
    torch.manual_seed(1)
    teacher, student = char_lstm(V, hidden=16, output="all"), ondevice_char_lstm(V, hidden=8, output="all")
    x = torch.randint(0, V, (64, 6))
    with torch.no_grad():
        y = teacher(x).argmax(1)  # (batch, time): the teacher's own next characters

    def agreement() -> float:
        with torch.no_grad():
            return float((student(x).argmax(1) == y).float().mean())

    before = agreement()
    update = FedDistillUpdate(teacher=teacher, steps=60, batch_size=32, lr=1e-2, optimizer="adam", alpha=0.9)
    params = model_params(student)
    result, _ = run_client(update, student, params, ClientData(0, x, y), None, {}, torch.Generator().manual_seed(0))
    load_params(student, {k: params[k] + result.update[k] for k in params})
    assert agreement() > before + 0.1
    assert result.metrics["steps"] == 60


def test_max_steps_caps_the_schedule_and_a_teacher_is_required():
    update = FedDistillUpdate(teacher=char_lstm(V, hidden=8), epochs=3, batch_size=4, max_steps=5)
    assert len(update.schedule(40, torch.Generator().manual_seed(0))) == 5
    with pytest.raises(ConfigError, match="teacher"):
        FedDistillUpdate()
    with pytest.raises(ConfigError, match="temperature"):
        FedDistillUpdate(teacher=char_lstm(V, hidden=8), temperature=0.0)
