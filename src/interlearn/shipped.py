"""Pretrained bases that ship inside the package, loaded by name and offline.

A user starts transfer learning from a checkpoint pretrained on a large source, the way timm or
the Hugging Face hub provide one. interlearn ships one such base for its embedded data, so
that ``interlearn tour`` and the examples test transfer and fine-tuning where they pay:

- ``"mnist-optdigits-cnn"``: the small CNN (:func:`interlearn.models.small_cnn.small_cnn`,
  channels 32/64, a 256-unit hidden layer) trained on the 60,000 MNIST training images turned
  into the 8x8 format of scikit-learn's digits (:func:`interlearn.data.optdigits.to_optdigits`).
  It reads the embedded digits with no digit label from them (zero-shot).

Each base is a safetensors file in ``interlearn/weights/`` with a model card beside it (data,
recipe, accuracy, checksum, license); the file's SHA-256 is checked on every load. The script
that trained it is ``benchmarks/train_shipped_base.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from interlearn.errors import CheckpointError, ConfigError
from interlearn.models.small_cnn import small_cnn

__all__ = ["ShippedBase", "SHIPPED", "shipped_path", "load_shipped", "file_sha256"]


@dataclass(frozen=True)
class ShippedBase:
    """One shipped base.

    Attributes:
        name: the name it is loaded by.
        filename: the safetensors file in ``interlearn/weights/``.
        sha256: the file's SHA-256 (also in the model card).
        channels: the CNN's conv channels.
        hidden: the CNN's hidden units.
        num_classes: outputs of its classifier (``fc2``).
        image_size: input height and width.
    """

    name: str
    filename: str
    sha256: str
    channels: tuple[int, int]
    hidden: int
    num_classes: int = 10
    image_size: int = 8

    def __post_init__(self) -> None:
        if len(self.sha256) != 64:
            raise ConfigError(f"{self.name}: sha256={self.sha256!r} is not a 64-hex-digit SHA-256")

    @property
    def card(self) -> str:
        """The model card's file name (Markdown beside the weights)."""
        return self.filename.replace(".safetensors", ".md")

    def architecture(self) -> nn.Sequential:
        """The untrained network the weights load into."""
        return small_cnn(self.num_classes, image_size=self.image_size, channels=self.channels, hidden=self.hidden)


SHIPPED: dict[str, ShippedBase] = {
    b.name: b
    for b in (
        ShippedBase(
            name="mnist-optdigits-cnn",
            filename="mnist-optdigits-cnn.safetensors",
            sha256="37c05a300f3bcb28dd112bd22cfc542a3336a18afefdab92d62e858d08c0b262",
            channels=(32, 64),
            hidden=256,
        ),
    )
}


def _base(name: str) -> ShippedBase:
    if name not in SHIPPED:
        raise ConfigError(f"no shipped base {name!r}; shipped: {sorted(SHIPPED)}")
    return SHIPPED[name]


def shipped_path(name: str, card: bool = False) -> Path:
    """The installed path of a shipped base's weights (or, with ``card=True``, its model card).

    Raises:
        ConfigError: an unknown name (the message lists the shipped ones).
    """
    base = _base(name)
    return Path(str(resources.files("interlearn") / "weights" / (base.card if card else base.filename)))


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_shipped(name: str = "mnist-optdigits-cnn") -> nn.Sequential:
    """A shipped pretrained base, with its trained classifier, from the package (no network).

    Args:
        name: a key of :data:`SHIPPED`.

    Returns:
        The trained ``nn.Sequential`` (top-level layers ``conv1 ... fc2``), in train mode, so
        ``model[:k]`` cuts it for :func:`interlearn.transfer.transfer`.

    Raises:
        ConfigError: an unknown name.
        CheckpointError: the file is missing or its checksum differs from the registered one.

    Example:
        >>> base = load_shipped("mnist-optdigits-cnn")
        >>> [n for n, _ in base.named_children()][-1]
        'fc2'
    """
    base = _base(name)
    path = shipped_path(name)
    if not path.is_file():
        raise CheckpointError(f"{name}: {path} is missing; reinstall interlearn (the weights are package data)")
    digest = file_sha256(path)
    if digest != base.sha256:
        raise CheckpointError(
            f"{name}: {path} has SHA-256 {digest}, expected {base.sha256}; the file is corrupted or was replaced: "
            "reinstall interlearn, or retrain it with benchmarks/train_shipped_base.py and update the registry"
        )
    model = base.architecture()
    model.load_state_dict(load_file(str(path)))
    return model
