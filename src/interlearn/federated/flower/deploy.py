"""Start a real Flower deployment on this machine: ``flower-superlink``, N ``flower-supernode``s,
then ``flwr run`` a Flower app against it. Used by the tests, the example and the benchmark.

This is Flower's own Deployment Engine, the same processes a production federation runs on
separate machines; here they talk over loopback in ``--insecure`` mode (see the README for TLS
and SuperNode authentication). Every process is started in its own session and the whole
process group (SuperExec and app subprocesses included) is stopped on exit, even on errors.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interlearn.errors import ConfigError, InterlearnError

__all__ = ["free_port", "write_flower_app", "LocalFederation", "toml_value"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(v: Any) -> str:
    """A scalar as a TOML literal (strings JSON-quoted, which is valid TOML)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    raise ConfigError(f"run config value {v!r}: only str, int, float and bool are allowed in a Flower run config")


def write_flower_app(
    directory: str | Path,
    module_source: str,
    run_config: Mapping[str, Any],
    name: str = "interlearnapp",
    module: str = "interlearn_flower_app",
    dependencies: Sequence[str] = (),
) -> Path:
    """Write a Flower app folder: ``pyproject.toml`` plus one module defining ``server_app``
    and ``client_app`` (built with :func:`make_server_app` / :func:`make_client_app`).

    Args:
        directory: the app folder (created).
        module_source: Python source of the module.
        run_config: defaults of ``[tool.flwr.app.config]`` (keys ``flwr run --run-config`` may
            override).
        name: the project name.
        module: the module's name.
        dependencies: the app's ``[project] dependencies``. Empty by default: the machines are
            expected to have interlearn installed (SuperLinks that install app dependencies at
            run time would otherwise try to fetch them).

    Returns:
        The app folder.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{module}.py").write_text(module_source)
    config = "\n".join(f"{k} = {toml_value(v)}" for k, v in run_config.items())
    (d / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "1.0.0"
description = "interlearn federated recipe deployed with Flower"
license = "Apache-2.0"
dependencies = {json.dumps(list(dependencies))}

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "interlearn"

[tool.flwr.app.components]
serverapp = "{module}:server_app"
clientapp = "{module}:client_app"

[tool.flwr.app.config]
{config}
"""
    )
    return d


def _bin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} not found: install Flower (pip install 'interlearn[federated]')")
    return found


class LocalFederation:
    """A SuperLink and ``len(node_configs)`` SuperNodes on loopback, as a context manager.

    Args:
        workdir: folder for logs and the Flower home (``FLWR_HOME``, which holds the CLI's
            SuperLink connection and the installed app bundles).
        node_configs: one ``--node-config`` mapping per SuperNode (e.g. ``{"partition-id": 0}``).
        start_timeout_s: seconds to wait for the SuperLink to accept connections.

    Example:
        >>> with LocalFederation(tmp, [{"partition-id": i} for i in range(3)]) as fed:
        ...     fed.run(app_dir, {"num-rounds": 2}, timeout_s=300)
    """

    def __init__(
        self, workdir: str | Path, node_configs: Sequence[Mapping[str, Any]], start_timeout_s: float = 60.0
    ) -> None:
        if not node_configs:
            raise ConfigError("node_configs is empty: a federation needs at least one SuperNode")
        self.workdir = Path(workdir)
        self.node_configs = [dict(c) for c in node_configs]
        self.start_timeout_s = start_timeout_s
        self.port = 0
        self.superlink: subprocess.Popen[bytes] | None = None
        self.supernodes: list[subprocess.Popen[bytes] | None] = []
        self._logs: list[Any] = []

    # ------------------------------------------------------------------ processes
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["FLWR_HOME"] = str(self.workdir / "flwr-home")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        return subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=self._env(), cwd=self.workdir, start_new_session=True
        )

    def _wait_port(self, port: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.superlink is not None and self.superlink.poll() is not None:
                raise InterlearnError(f"flower-superlink exited early; see {self.workdir / 'superlink.log'}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise InterlearnError(f"flower-superlink did not listen on port {port} within {self.start_timeout_s}s")

    def start(self) -> LocalFederation:
        """Start the SuperLink, wait for it, start the SuperNodes, write the CLI connection."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        home = self.workdir / "flwr-home"
        home.mkdir(exist_ok=True)
        self.port = free_port()
        self.superlink = self._spawn(
            [
                _bin("flower-superlink"),
                "--insecure",
                "--disable-runtime-dependency-installation",
                "--port",
                str(self.port),
            ],
            "superlink.log",
        )
        self._wait_port(self.port)
        for i, cfg in enumerate(self.node_configs):
            node_cfg = " ".join(f"{k}={toml_value(v)}" for k, v in cfg.items())
            self.supernodes.append(
                self._spawn(
                    [
                        _bin("flower-supernode"),
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{self.port}",
                        "--port",
                        str(free_port()),
                        "--node-config",
                        node_cfg,
                    ],
                    f"supernode-{i}.log",
                )
            )
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "local-test"\n\n[superlink.local-test]\naddress = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )
        return self

    def run(self, app_dir: str | Path, run_config: Mapping[str, Any] | None = None, timeout_s: float = 600.0) -> str:
        """``flwr run APP local-test --stream`` with ``run_config`` overrides; returns its output.

        Raises:
            InterlearnError: ``flwr run`` failed or did not finish within ``timeout_s`` (the
                message holds the tail of its output).
        """
        args = [_bin("flwr"), "run", str(Path(app_dir).resolve()), "local-test", "--stream"]
        if run_config:
            args += ["--run-config", " ".join(f"{k}={toml_value(v)}" for k, v in run_config.items())]
        try:
            proc = subprocess.run(args, env=self._env(), cwd=self.workdir, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode(errors="replace")
            raise InterlearnError(f"flwr run did not finish within {timeout_s}s; output tail:\n{out[-3000:]}") from exc
        out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        (self.workdir / "flwr-run.log").write_text(out)
        if proc.returncode != 0:
            raise InterlearnError(f"flwr run exited with {proc.returncode}; output tail:\n{out[-3000:]}")
        return out

    def start_run(self, app_dir: str | Path, run_config: Mapping[str, Any] | None = None) -> subprocess.Popen[bytes]:
        """Like :meth:`run` but returns the running ``flwr run`` process (to act mid-run)."""
        args = [_bin("flwr"), "run", str(Path(app_dir).resolve()), "local-test", "--stream"]
        if run_config:
            args += ["--run-config", " ".join(f"{k}={toml_value(v)}" for k, v in run_config.items())]
        return self._spawn(args, "flwr-run.log")

    def kill_supernode(self, index: int) -> None:
        """SIGKILL SuperNode ``index`` and its subprocesses (a device vanishing mid-round)."""
        proc = self.supernodes[index]
        if proc is not None:
            children = _descendants(proc.pid)
            _kill_group(proc, signal.SIGKILL)
            for c in children:
                try:
                    c.kill()
                except Exception:  # noqa: BLE001  (already gone)
                    pass
            proc.wait(timeout=10)
            self.supernodes[index] = None

    def stop(self) -> None:
        """Stop every process this federation started (SIGTERM, then SIGKILL after 10 s)."""
        procs = [p for p in [*self.supernodes, self.superlink] if p is not None]
        children = [c for p in procs for c in _descendants(p.pid)]
        for p in procs:
            _kill_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _kill_group(p, signal.SIGKILL)
                p.wait(timeout=5)
        for p in procs:  # children (SuperExec, app processes) share the process group
            _kill_group(p, signal.SIGKILL)
        for c in children:  # the SuperLink starts its SuperExec in a session of its own
            try:
                c.kill()
            except Exception:  # noqa: BLE001  (already gone)
                pass
        self.supernodes = []
        self.superlink = None
        for log in self._logs:
            log.close()
        self._logs = []

    def __enter__(self) -> LocalFederation:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _descendants(pid: int) -> list[Any]:
    """The live descendants of ``pid`` (psutil process handles), to stop them with their parent."""
    try:
        import psutil

        return list(psutil.Process(pid).children(recursive=True))
    except Exception:  # noqa: BLE001  (psutil missing or the process already gone)
        return []


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group this federation created with start_new_session
    except (ProcessLookupError, PermissionError):
        pass
