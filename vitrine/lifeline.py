"""What ties `vitrine dev`'s children to it, so that none outlives it however it ends.

- `vitrine dev` stops when its parent (`make`, `uv run`, a shell) dies, even by SIGKILL:
  `die_with_parent` asks the kernel for a SIGTERM then (Linux's PR_SET_PDEATHSIG).
- Every child (embedded servers, nginx-rtmp, the services) joins one process group of its own —
  not the terminal's, so Ctrl-C reaches `vitrine dev` alone, which stops them in order — and is
  told to die with `vitrine dev` too. What is left once they are stopped (nginx's workers, a
  remuxing ffmpeg) goes with a SIGKILL of the whole group.

The death signal is tied to the thread that starts the child: children are started from the main
thread, which lives as long as `vitrine dev`.
"""

import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Have the kernel send `signum` to this process when its parent dies; whether it can."""
    prctl = _prctl()
    if prctl is None:
        return False
    parent = os.getppid()
    prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before we asked
        os.kill(os.getpid(), signum)
    return True


class ProcessGroup:
    """The process group every child of `vitrine dev` joins (see the module)."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self._prctl = _prctl()
        self._parent = os.getpid()

    def popen_kwargs(self, *, death_signal: int = signal.SIGTERM) -> dict[str, Any]:
        """What `subprocess.Popen` needs to start a child in the group, dying with us."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("children of `vitrine dev` are started from its main thread")
        kwargs: dict[str, Any] = {"process_group": self._live_pgid() or 0}
        if self._prctl is not None:
            prctl, parent = self._prctl, self._parent

            def die_with_us() -> None:  # runs in the child, after fork (and setuid), before exec
                prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
                if os.getppid() != parent:
                    os._exit(1)

            kwargs["preexec_fn"] = die_with_us
        return kwargs

    def joined(self, pid: int) -> None:
        """A child started with `popen_kwargs`: the first one leads the group."""
        if self._live_pgid() is None:
            self.pgid = pid

    def _live_pgid(self) -> int | None:
        """The group, if anything is still in it (a group with no process left cannot be joined)."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                self.pgid = None
            except PermissionError:
                pass  # members run as another user (PostgreSQL): it exists
        return self.pgid

    def kill_all(self) -> None:
        """SIGKILL whatever is left in the group."""
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
