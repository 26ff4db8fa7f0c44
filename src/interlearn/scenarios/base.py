"""What a tour scenario returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interlearn.report import Section

__all__ = ["Scenario"]


@dataclass(frozen=True)
class Scenario:
    """Summary rows (``{variant: {metric: value}}``) and the report sections they support."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
