"""One render thread with latest-request-wins slots.

Each lane (e.g. 'load', 'render', 'curve') holds at most one waiting job. Submitting a job to a lane
whose slot is still waiting supersedes the waiting one (its future raises Superseded); the job that is
already running finishes. Lanes are served in priority order, so a slider drag never queues up work.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, Callable


class Superseded(Exception):
    """A newer request took this request's place before it started."""


class LatestWinsWorker:
    """A daemon thread running submitted callables, one waiting job per lane, newest wins."""

    def __init__(self, lanes: tuple[str, ...]):
        self.lanes = lanes
        self._slots: dict[str, tuple[Callable[[], Any], Future] | None] = {lane: None for lane in lanes}
        self._cond = threading.Condition()
        self._closed = False
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="workbench-render", daemon=True)
        self._thread.start()

    def submit(self, lane: str, fn: Callable[[], Any]) -> Future:
        """Queue fn in lane, superseding the lane's waiting job; returns a Future of fn's result."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the render worker is closed")
            old = self._slots[lane]
            self._slots[lane] = (fn, fut)
            self._cond.notify()
        if old is not None and old[1].set_running_or_notify_cancel():
            old[1].set_exception(Superseded())
        return fut

    def busy(self) -> bool:
        """True while a job runs or waits."""
        with self._cond:
            return self._running or any(self._slots.values())

    def close(self) -> None:
        """Stop the thread after the running job; waiting jobs are superseded."""
        with self._cond:
            self._closed = True
            waiting = [s for s in self._slots.values() if s is not None]
            self._slots = {lane: None for lane in self.lanes}
            self._cond.notify()
        for _, fut in waiting:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(Superseded())
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not any(self._slots.values()):
                    self._cond.wait()
                if self._closed:
                    return
                lane = next(lane for lane in self.lanes if self._slots[lane] is not None)
                fn, fut = self._slots[lane]
                self._slots[lane] = None
                self._running = True
            try:
                if fut.set_running_or_notify_cancel():  # False: the waiting client gave up (cancelled)
                    try:
                        fut.set_result(fn())
                    except BaseException as e:  # handed to the waiting request, which reports it
                        fut.set_exception(e)
            finally:
                with self._cond:
                    self._running = False
