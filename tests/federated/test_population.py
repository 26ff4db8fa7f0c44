"""The population: index views over one dataset, validated where it is built."""

from __future__ import annotations

import pytest
import torch

from interlearn.errors import ConfigError, DataError
from interlearn.federated import Population


def test_views_and_sizes():
    pop = Population(torch.randn(6, 2), torch.arange(6), [[0, 1, 2], [3, 4], [5]])
    assert len(pop) == 3 and pop.sizes.tolist() == [3, 2, 1]
    assert pop.client(1).y.tolist() == [3, 4]
    with pytest.raises(ConfigError, match="out of range"):
        pop.client(3)


def test_an_empty_client_is_refused_when_the_population_is_built():
    """It used to pass here and fail only when the empty client was sampled, rounds later."""
    with pytest.raises(DataError, match=r"client\(s\) \[1, 3\] have no examples \(2 of 4\).*drop empty parts"):
        Population(torch.randn(6, 2), torch.arange(6), [[0, 1], [], [2, 3, 4, 5], []])
    with pytest.raises(DataError, match="at least one client"):
        Population(torch.randn(6, 2), torch.arange(6), [])
    with pytest.raises(DataError, match="indexes example 9"):
        Population(torch.randn(6, 2), torch.arange(6), [[0, 9]])
