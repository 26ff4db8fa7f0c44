"""Catastrophic forgetting: what fine-tuning on a new task costs on the source task.

McCloskey & Cohen (1989); Goodfellow et al. (2013), "An Empirical Investigation of Catastrophic
Forgetting in Gradient-Based Neural Networks", arXiv:1312.6211; Kirkpatrick et al. (2017, EWC)
measure it the same way: accuracy on the source task before fine-tuning minus accuracy after.

A fine-tuned model has a new head for the new task, so its source-task accuracy is measured by
putting the *original* source head back on the fine-tuned body (:func:`with_head`; LoRA
adapters are merged first, as they would be for export). Strategies that leave the body alone
(``last_n=1``) forget nothing by construction; adapters kept separate could be switched off for
the source task, but once merged they change the body like any other update.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from torch import nn

from interlearn.data.tensors import TensorData
from interlearn.errors import ConfigError, closest
from interlearn.lora import is_lora, merge_lora
from interlearn.surgery import replace_module
from interlearn.tasks import Task
from interlearn.training import evaluate

__all__ = ["ForgettingReport", "with_head", "measure_forgetting", "forgetting_table"]


@dataclass(frozen=True)
class ForgettingReport:
    """Accuracy on the new task and on the source task before/after fine-tuning.

    Attributes:
        name: the variant (e.g. the strategy).
        target_accuracy: accuracy of the fine-tuned model on the new task.
        source_before: accuracy of the pretrained model on the source task.
        source_after: accuracy on the source task of the fine-tuned body with the source head.
        forgetting: ``source_before - source_after`` (positive = forgotten).
        trainable_params: parameters the fine-tuning trained.
    """

    name: str
    target_accuracy: float
    source_before: float
    source_after: float
    forgetting: float
    trainable_params: int

    def as_row(self) -> dict[str, float | int]:
        """The report as a summary row (``accuracy`` = new-task accuracy)."""
        row = asdict(self)
        row.pop("name")
        return {"accuracy": row.pop("target_accuracy"), **row}


def with_head(finetuned: nn.Module, head: str, source_head: nn.Module) -> nn.Module:
    """A copy of ``finetuned`` (LoRA adapters merged) whose module ``head`` is ``source_head``.

    Raises:
        ConfigError: ``head`` is not a module of the (merged) model.
    """
    model = copy.deepcopy(finetuned)
    if is_lora(model):
        model = merge_lora(model)
    replace_module(model, head, copy.deepcopy(source_head))
    return model


def measure_forgetting(
    name: str,
    finetuned: nn.Module,
    pretrained: nn.Module,
    head: str,
    target_test: TensorData,
    target_task: Task,
    source_test: TensorData,
    source_task: Task,
    trainable_params: int = 0,
) -> ForgettingReport:
    """Evaluate a fine-tuned model on its new task and on the source task.

    Args:
        name: label of this variant.
        finetuned: the fine-tuned model (new head; may be a PEFT model).
        pretrained: an untouched copy of the source model (source head); keep it with
            ``copy.deepcopy`` before fine-tuning, which changes the model in place.
        head: module name of the head in both models (e.g. ``"fc2"``).
        target_test, target_task: the new task's test data and task.
        source_test, source_task: the source task's test data and task.
        trainable_params: reported as is (from :class:`interlearn.finetune.FinetuneResult`).

    Returns:
        A :class:`ForgettingReport`.

    Raises:
        ConfigError: ``head`` names no module (the closest names are listed).
    """
    modules = dict(pretrained.named_modules())
    if head not in modules or not head:
        raise ConfigError(
            f"head={head!r} is not a module of the pretrained model; closest names: {closest(head, [n for n in modules if n])}"
        )
    before = evaluate(pretrained, source_test, source_task)["accuracy"]
    after = evaluate(with_head(finetuned, head, modules[head]), source_test, source_task)["accuracy"]
    target = evaluate(finetuned, target_test, target_task)["accuracy"]
    return ForgettingReport(name, target, before, after, before - after, trainable_params)


def forgetting_table(reports: Iterable[ForgettingReport]) -> str:
    """A Markdown table: new-task accuracy, source accuracy before/after, forgetting, trainable."""
    lines = [
        "| variant | new-task acc | source acc before | source acc after | forgetting | trainable params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.name} | {r.target_accuracy:.4f} | {r.source_before:.4f} | {r.source_after:.4f} | "
        f"{r.forgetting:+.4f} | {r.trainable_params:,} |"
        for r in reports
    ]
    return "\n".join(lines)
