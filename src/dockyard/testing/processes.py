"""Stopping a server process that runs in a process group of its own, by its process id.

The tests and the benchmark start servers with ``start_new_session=True`` (``dockyard serve``,
distribution, S3 engines), so each is the leader of its own group: the group holds its workers
and nothing else of the machine. Stopping one is then the same everywhere: ask the leader, wait,
and only then kill what is left of that group. Never a name-based kill (``pkill``), which would
hit other users' processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
    """Send ``sig`` to the leader (SIGKILL goes to the whole group at once), wait ``timeout``
    seconds for it to exit, SIGKILL the group if it did not, and finally SIGKILL any stray member
    still in the group (a worker its parent left behind). Returns the leader's exit status."""
    if proc.poll() is None:
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode
