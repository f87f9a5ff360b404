"""The filesystem driver's worker threads: results, errors, the thread cap, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from dockyard.storage.drivers.offload import Offload

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_results_and_errors_reach_the_caller() -> None:
    pool = Offload(4, "t")
    assert await pool.run(lambda a, b: a + b, 2, 3) == 5
    assert await pool.run(threading.get_ident) != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        await pool.run(lambda: 1 / 0)
    pool.shutdown()


async def test_calls_run_in_parallel_up_to_the_cap_then_queue() -> None:
    pool = Offload(3, "t")
    running = 0
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    started = time.perf_counter()
    await asyncio.gather(*[pool.run(work) for _ in range(9)])
    elapsed = time.perf_counter() - started
    assert peak == 3  # never more threads than allowed, and all of them used
    assert elapsed >= 0.15  # 9 calls of 50 ms on 3 threads: three waves
    assert len([t for t in threading.enumerate() if t.name.startswith("t-")]) == 3
    pool.shutdown()


async def test_idle_threads_are_reused() -> None:
    pool = Offload(8, "reuse")
    for _ in range(20):
        await pool.run(time.sleep, 0)
    assert len([t for t in threading.enumerate() if t.name.startswith("reuse-")]) == 1
    pool.shutdown()


async def test_a_cancelled_caller_does_not_stop_the_call() -> None:
    pool = Offload(1, "t")
    done = threading.Event()

    def slow() -> None:
        time.sleep(0.1)
        done.set()

    task = asyncio.ensure_future(pool.run(slow))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pool.run(lambda: done.wait(5))  # the same thread finished it, then took this one
    pool.shutdown()
