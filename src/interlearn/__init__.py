"""interlearn: models that learn from other models, tasks and devices.

Transfer learning, fine-tuning (incl. LoRA through PEFT), multi-task learning, federated
learning and knowledge distillation for any PyTorch model, on one training loop.

The curated public API is re-exported here; subpackages (``interlearn.federated``,
``interlearn.multitask``, ``interlearn.data``, ``interlearn.ondevice``) expose their own.

The paradigm entry points are importable from the top: :func:`transfer`, :func:`finetune`,
:func:`distill`, :func:`advise`, :func:`train_multitask` and :func:`simulate` (federated).

**Modules and functions of the same name.** ``transfer``, ``finetune``, ``distill`` and
``advise`` are each a module *and* the function it is named after. Here, on the package, the name
is the **function** (``interlearn.transfer(base, target, task)``): it is what a user calls, and
renaming the modules would only move the clash. The modules stay importable by their dotted path,
which Python resolves through ``sys.modules`` (``from interlearn.transfer import cut_points,
TransferResult`` and ``importlib.import_module("interlearn.transfer")`` give the module); only
attribute access on the package (``interlearn.transfer.cut_points``) and
``import interlearn.transfer as m`` give the function, so import the module's other names with
``from ... import``.
"""

from interlearn import surgery
from interlearn.advise import Advice, AdviseConfig, advise
from interlearn.checkpoint import load_checkpoint, save_checkpoint
from interlearn.config import FitConfig
from interlearn.data import TensorData, from_arrays, load_csv, load_digits, load_mnist, load_npz
from interlearn.distill import distill, kd_loss
from interlearn.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    InterlearnError,
    RoundSkipped,
    ShapeError,
    TrainingDivergedError,
    UpdateRejected,
)
from interlearn.federated.server.simulation import SimulationConfig, SimulationResult, simulate
from interlearn.finetune import FinetuneResult, FinetuneSpec, finetune
from interlearn.lora import LoraSpec, apply_lora, merge_lora
from interlearn.multitask.train import MultiTaskResult, train_multitask
from interlearn.pretrained import load_pretrained
from interlearn.surgery import (
    count_params,
    freeze,
    param_groups,
    replace_last,
    replace_module,
    trainable_table,
    unfreeze,
)
from interlearn.tasks import Task, classification, multilabel, regression
from interlearn.tracking import TrackingConfig
from interlearn.training import FitResult, evaluate, fit
from interlearn.transfer import TransferResult, transfer
from interlearn.types import ClientId, LossFn, Params

# The entry points above shadow their same-named modules as package attributes, on purpose:
# see the module docstring. Nothing below may rebind them.

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # training
    "fit",
    "evaluate",
    "FitConfig",
    "FitResult",
    "TrackingConfig",
    # tasks and data
    "Task",
    "classification",
    "regression",
    "multilabel",
    "TensorData",
    "from_arrays",
    "load_npz",
    "load_csv",
    "load_digits",
    "load_mnist",
    # surgery
    "surgery",
    "freeze",
    "unfreeze",
    "replace_module",
    "replace_last",
    "param_groups",
    "count_params",
    "trainable_table",
    # paradigms: entry points, their configs and results
    "transfer",
    "TransferResult",
    "finetune",
    "FinetuneSpec",
    "FinetuneResult",
    "apply_lora",
    "merge_lora",
    "LoraSpec",
    "distill",
    "kd_loss",
    "train_multitask",
    "MultiTaskResult",
    "simulate",
    "SimulationConfig",
    "SimulationResult",
    "advise",
    "AdviseConfig",
    "Advice",
    "load_pretrained",
    # checkpoints
    "save_checkpoint",
    "load_checkpoint",
    # domain nouns
    "Params",
    "ClientId",
    "LossFn",
    # errors
    "InterlearnError",
    "ConfigError",
    "ShapeError",
    "DataError",
    "CheckpointError",
    "TrainingDivergedError",
    "UpdateRejected",
    "RoundSkipped",
]
