"""tmux sessions and /proc readings for ``bench_tmux_e2e`` (Linux only).

* :class:`Session`: one app in its own tmux server (private socket, no user config,
  fixed size), its process found under the pane, and everything killed on close;
* :func:`cpu_seconds`, :func:`rss_mb`, :func:`context_switches`, :func:`written_kb`: one
  process's CPU time (all threads, nanoseconds from ``schedstat``), resident memory,
  voluntary + involuntary context switches (all threads) and bytes written;
* :func:`wait_quiet`: until a process's CPU stops increasing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = [
    "Session",
    "TmuxMissing",
    "context_switches",
    "cpu_seconds",
    "require_tmux",
    "rss_mb",
    "wait_quiet",
    "written_kb",
]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class TmuxMissing(RuntimeError):
    pass


def require_tmux() -> str:
    """The tmux executable, or :class:`TmuxMissing` saying what to install."""
    if not Path("/proc/self/stat").exists():
        raise TmuxMissing("this benchmark reads /proc: it runs on Linux only")
    found = shutil.which("tmux")
    if found is None:
        raise TmuxMissing(
            "tmux is not installed (or not on PATH); install it (apt-get install tmux) "
            "and run again"
        )
    return found


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads still alive) of ``pid``; None once it is gone."""
    total = 0
    found = False
    for task in _tasks(pid):
        try:
            total += int((task / "schedstat").read_text().split()[0])
            found = True
        except (OSError, ValueError, IndexError):
            continue
    if found:
        return total / 1e9
    try:  # no schedstat (a kernel without it): whole-process clock ticks
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def _status(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    except OSError:
        pass
    return out


def rss_mb(pid: int) -> float | None:
    """Resident memory (``VmRSS``) in MB (10^6 bytes); None once the process is gone."""
    value = _status(Path(f"/proc/{pid}/status")).get("VmRSS")
    return None if value is None else int(value.split()[0]) * 1024 / 1e6


def written_kb(pid: int) -> float | None:
    """Bytes ``pid`` has written so far (``wchar``: terminal, files, sockets), in kB."""
    value = _status(Path(f"/proc/{pid}/io")).get("wchar")
    return None if value is None else int(value) / 1e3


def context_switches(pid: int) -> int | None:
    """Voluntary + involuntary context switches of all of ``pid``'s threads."""
    total = 0
    found = False
    for task in _tasks(pid):
        status = _status(task / "status")
        try:
            total += int(status["voluntary_ctxt_switches"])
            total += int(status["nonvoluntary_ctxt_switches"])
            found = True
        except (KeyError, ValueError):
            continue
    return total if found else None


def wait_quiet(
    pid: int, *, quiet_for: float = 1.0, threshold: float = 0.02, timeout: float = 30.0
) -> tuple[float, float] | None:
    """Wait until ``pid`` uses less than ``threshold`` CPU seconds per second for
    ``quiet_for`` seconds; returns ``(monotonic time, CPU seconds)`` at the start of that
    quiet stretch, or None on timeout (or when the process is gone)."""
    deadline = time.monotonic() + timeout
    step = 0.1
    samples: list[tuple[float, float]] = []
    while time.monotonic() < deadline:
        cpu = cpu_seconds(pid)
        if cpu is None:
            return None
        now = time.monotonic()
        samples.append((now, cpu))
        # The newest sample at least quiet_for old: was the process quiet since?
        old = [s for s in samples if now - s[0] >= quiet_for]
        if old:
            start_t, start_cpu = old[-1]
            if cpu - start_cpu < threshold * (now - start_t):
                return start_t, start_cpu
            samples = samples[len(old) - 1 :]
        time.sleep(step)  # a sampling period, not synchronisation
    return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in _tasks(pid):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def _is_python(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("python")
    except OSError:
        return False


class Session:
    """``command`` running in a private tmux server, ``width``×``height``."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        width: int = 120,
        height: int = 40,
    ) -> None:
        self.tmux = require_tmux()
        self.socket = f"tide-bench-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        self.pid: int | None = None
        self._socket_path: str | None = None
        args = ["new-session", "-d", "-s", "bench", "-x", str(width), "-y", str(height)]
        args += ["-c", str(cwd)]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        args.append(shlex.join(command))
        # In the same tmux call, so it holds before the app could exit: a crashed app's
        # last screen (its traceback) stays readable for the error message.
        args += [";", "set-option", "-w", "-t", "bench", "remain-on-exit", "on"]
        result = self._run(*args)
        if result.returncode != 0:
            self.close()
            raise RuntimeError(f"tmux could not start the app: {result.stderr.strip()}")
        self._socket_path = self.run("display-message", "-p", "#{socket_path}").strip() or None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tmux, "-f", "/dev/null", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=False,
        )

    def run(self, *args: str) -> str:
        return self._run(*args).stdout

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "bench")

    def send(self, *keys: str) -> None:
        self.run("send-keys", "-t", "bench", *keys)

    def find_app(self, timeout: float = 15.0) -> int:
        """The app's process: the pane's process, or its newest Python descendant."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.run("display-message", "-p", "-t", "bench", "#{pane_pid}").strip()
            if text.isdigit():
                todo, found = [int(text)], None
                while todo:
                    pid = todo.pop()
                    if _is_python(pid):
                        found = pid
                    todo += _children(pid)
                if found is not None:
                    self.pid = found
                    return found
            if self.dead():
                break
            time.sleep(0.05)  # polling for the process to appear
        raise RuntimeError(
            f"the app's process did not appear under the tmux pane{self.last_words()}"
        )

    def last_words(self) -> str:
        """The last non-blank lines on screen, for an error message."""
        lines = [line.strip() for line in self.capture().splitlines() if line.strip()]
        dead = [line for line in lines if line.startswith("Pane is dead")]
        lines = [line for line in lines if not line.startswith("Pane is dead")]
        text = ("; its screen ends: " + " | ".join(lines[-4:])) if lines else ""
        if dead:  # "Pane is dead (status 1, <date>)"
            text = f"; the app exited ({dead[-1].partition('(')[2].partition(',')[0]})" + text
        return text

    def wait_for(self, needles: Sequence[str], timeout: float, poll: float = 0.02) -> float | None:
        """Until every needle is on screen at once; the time of that capture."""
        deadline = time.monotonic() + timeout
        polls = 0
        while time.monotonic() < deadline:
            screen = self.capture()
            now = time.monotonic()
            if all(n in screen for n in needles):
                return now
            polls += 1
            if polls % 25 == 0 and self.dead():
                return None
            time.sleep(poll)  # polling the screen
        return None

    def dead(self) -> bool:
        """Whether the app has exited (its pane stays, ``remain-on-exit``)."""
        return self.run("display-message", "-p", "-t", "bench", "#{pane_dead}").strip() == "1"

    def close(self) -> None:
        self._run("kill-server")
        pid = self.pid
        if pid is not None:
            deadline = time.monotonic() + 3.0
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)  # waiting for the app to exit after SIGHUP
            if Path(f"/proc/{pid}").exists():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self._socket_path:
            try:
                os.unlink(self._socket_path)
            except OSError:
                pass

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
