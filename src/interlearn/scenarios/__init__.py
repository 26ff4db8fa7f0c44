"""The tour's scenarios: each tests what one paradigm is for, on the embedded digits.

Each module's ``run(out, seed, progress)`` returns a :class:`Scenario`: summary rows (every
measured number) and report sections (:class:`interlearn.report.Section`) whose verdicts are
computed from those numbers, including when a paradigm does not help.

- :mod:`~interlearn.scenarios.transfer` — transfer and fine-tuning with few target labels: a
  learning curve over label budgets (two sections).
- :mod:`~interlearn.scenarios.distill` — distillation into students too small to match the
  teacher: accuracy vs student size, alone and distilled.
- :mod:`~interlearn.scenarios.multitask` — multi-task learning with little data per task.
- :mod:`~interlearn.scenarios.federated` — non-IID clients: FedAvg vs local-only vs
  centralized, and the accuracy cost of differential privacy (accuracy vs epsilon).
- :mod:`~interlearn.scenarios.personal` — personalization by a local memory (kNN-Per) over the
  federated model: every user's accuracy before and after, and the skew where it stops paying.
"""

from interlearn.scenarios.base import Scenario

__all__ = ["Scenario"]
