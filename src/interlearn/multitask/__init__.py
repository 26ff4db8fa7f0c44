"""Multi-task learning: a shared trunk with task heads, loss weighting and gradient combination,
partial labels, MultiMNIST, and comparisons against independent single-task models."""

from interlearn.multitask.base import MTL_METHODS, MTLContext, MTLMethod, register_method
from interlearn.multitask.cross_stitch import CrossStitch
from interlearn.multitask.methods import list_methods, make_method, method_kind
from interlearn.multitask.model import MMoE, MultiTaskModel, heads_for, lenet_stages, lenet_trunk, mlp_stages, mlp_trunk
from interlearn.multitask.targets import TaskSet, mix_sources, pack_targets
from interlearn.multitask.train import MultiTaskResult, evaluate_multitask, train_independent, train_multitask

__all__ = [
    "MTLMethod",
    "MTLContext",
    "MTL_METHODS",
    "list_methods",
    "make_method",
    "method_kind",
    "register_method",
    "MultiTaskModel",
    "MMoE",
    "CrossStitch",
    "heads_for",
    "lenet_stages",
    "lenet_trunk",
    "mlp_stages",
    "mlp_trunk",
    "TaskSet",
    "pack_targets",
    "mix_sources",
    "MultiTaskResult",
    "evaluate_multitask",
    "train_independent",
    "train_multitask",
]
