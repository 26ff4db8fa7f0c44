import sys
import types
from dataclasses import dataclass
from typing import Annotated

import pytest

from interlearn.errors import ConfigError
from interlearn.registry import Registry, check_names


def test_register_get_build_and_listing():
    r: Registry[type] = Registry("widget")
    r.register("b", dict)
    assert r.decorator("a")(list) is list
    assert r.get("a") is list
    assert r.build("b", x=1) == {"x": 1}
    assert r.names() == ["a", "b"]
    assert list(r) == ["b", "a"]  # registration order
    assert "a" in r and "c" not in r and len(r) == 2


def test_unknown_name_lists_the_known_and_the_closest():
    r: Registry[type] = Registry("widget")
    r.register("sequential", dict)
    with pytest.raises(
        ConfigError, match=r"unknown widget 'sequnetial'; known widgets: \['sequential'\] \(closest: 'sequential'\)"
    ):
        r.get("sequnetial")


def test_duplicate_and_bad_names_are_refused():
    r: Registry[int] = Registry("widget")
    r.register("a", 1)
    with pytest.raises(ConfigError, match="'a' is already registered; pick another name"):
        r.register("a", 2)
    with pytest.raises(ConfigError, match="non-empty string"):
        r.register("", 3)


def test_bad_keyword_is_a_config_error_naming_the_entry():
    r: Registry[type] = Registry("widget")
    r.register("pair", lambda a, b: (a, b))
    with pytest.raises(ConfigError, match="widget 'pair'"):
        r.build("pair", a=1, c=2)


def test_plugins_load_on_the_first_miss_and_missing_ones_are_skipped(tmp_path, monkeypatch):
    r: Registry[int] = Registry("widget", plugins=("interlearn_test_plugin_absent", "interlearn_test_plugin"))
    host = types.ModuleType("interlearn_test_host")
    host.REGISTRY = r
    monkeypatch.setitem(sys.modules, "interlearn_test_host", host)
    (tmp_path / "interlearn_test_plugin.py").write_text(
        "import interlearn_test_host\ninterlearn_test_host.REGISTRY.register('late', 2)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "interlearn_test_plugin", raising=False)
    r.register("core", 1)
    assert r.get("core") == 1 and "late" not in r  # a hit imports nothing
    assert r.get("late") == 2  # a miss imports the plugins (the absent one is skipped)
    assert r.names() == ["core", "late"]


def test_register_all_is_the_one_idiom_for_a_table():
    r: Registry[int] = Registry("widget")
    r.register_all({"a": 1, "b": 2})
    assert list(r) == ["a", "b"]
    with pytest.raises(ConfigError, match="'a' is already registered"):
        r.register_all({"a": 3})
    r.register_all({"a": 3, "c": 4}, skip_registered=True)  # a plugin module imported twice
    assert r.get("a") == 1 and r.get("c") == 4
    assert r.unregister("c") == 4 and "c" not in r


WIDGETS: Registry[int] = Registry("widget")
WIDGETS.register_all({"left": 1, "right": 2})


@dataclass(frozen=True)
class _Config:
    widget: Annotated[str, WIDGETS] = "left"
    maybe: Annotated[str, WIDGETS] | None = None

    def __post_init__(self) -> None:
        check_names(self)


def test_config_fields_name_registered_entries():
    assert _Config("right", "left").widget == "right"
    with pytest.raises(
        ConfigError, match=r"widget: unknown widget 'rigt'; known widgets: \['left', 'right'\] \(closest: 'right'"
    ):
        _Config("rigt")
    with pytest.raises(ConfigError, match=r"maybe: unknown widget 'up'"):
        _Config(maybe="up")
    WIDGETS.register("up", 3)  # registered later, from user code: accepted
    try:
        assert _Config(maybe="up").maybe == "up"
    finally:
        WIDGETS.unregister("up")


def test_installed_packages_register_through_entry_points(monkeypatch, tmp_path):
    import importlib.metadata

    import interlearn.registry as registry

    r: Registry[int] = Registry("widget")
    host = types.ModuleType("interlearn_test_ep_host")
    host.REGISTRY = r
    monkeypatch.setitem(sys.modules, "interlearn_test_ep_host", host)
    (tmp_path / "interlearn_test_ep_plugin.py").write_text(
        "import interlearn_test_ep_host\ninterlearn_test_ep_host.REGISTRY.register('installed', 7)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("mine", "interlearn_test_ep_plugin", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: [ep] if group == ep.group else [])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert r.get("installed") == 7  # a miss imported the package's module

    broken = importlib.metadata.EntryPoint("broken", "interlearn_test_no_such_module", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.importlib.metadata, "entry_points", lambda group: [broken])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    with pytest.raises(ConfigError, match="interlearn plugin 'broken' .* failed to import"):
        r.get("nothing")
