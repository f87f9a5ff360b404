"""Blocking calls in worker threads, with as little per-call overhead as possible.

``loop.run_in_executor`` with a ``ThreadPoolExecutor`` costs ~75 us of CPU per call under load on
this project's machines (a ``concurrent.futures.Future`` with its condition variable, a work item,
and a chained asyncio future with callbacks in both directions); a registry pays it several times
per request. Here a call is one ``SimpleQueue.put`` and one ``call_soon_threadsafe`` (~40 us): the
worker thread completes a plain asyncio future on the caller's loop.

Threads start on demand up to ``max_threads`` and then stay. Every call either takes an idle thread
or starts one; at the limit it waits in the queue for the next free thread. If the awaiting task is
cancelled, the call still runs to completion (as with ``run_in_executor``) and its result is
dropped. At interpreter exit the threads finish the call in hand and stop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_live: weakref.WeakSet[Offload] = weakref.WeakSet()


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class Offload:
    def __init__(self, max_threads: int, name: str) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self._max = max_threads
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        _live.add(self)

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Call ``fn(*args)`` in a worker thread; await the returned future for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn, args))
        start = None
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # that thread is now spoken for
            elif len(self._threads) < self._max:
                start = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(start)
        if start is not None:
            start.start()
        return future

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            loop, future, fn, args = job
            try:
                result = fn(*args)
            except BaseException as exc:
                done: Callable[..., None] = _fail
                value: Any = exc
            else:
                done, value = _succeed, result
            del job, fn, args
            with self._lock:  # free before the caller hears back, so its next call reuses us
                self._idle += 1
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(done, future, value)
            del future, value

    def shutdown(self, timeout: float = 5.0) -> None:
        """Let every thread finish the call in hand, then stop it."""
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout)


@atexit.register
def _shutdown_all() -> None:
    for offload in list(_live):
        offload.shutdown()
