"""One render thread with latest-request-wins slots.

Each lane (e.g. 'load', 'render', 'curve') holds at most one waiting job. Submitting a job to a lane
whose slot is still waiting supersedes the waiting one (its future raises Superseded); a plain job that
is already running finishes. Lanes are served in priority order, so a slider drag never queues up work.

A job may return a generator (a long job in steps, e.g. a prediction curve): it runs one step at a time,
a waiting job of a higher-priority lane runs between two steps, and a newer job in its own lane
supersedes it at the next step. The generator's return value is the job's result; what it yields
besides None (e.g. a preview image) goes to the job's `progress` callback, called in the render thread.
"""

from __future__ import annotations

import inspect
import threading
from concurrent.futures import Future
from typing import Any, Callable, Generator

Progress = Callable[[Any], None] | None


class Superseded(Exception):
    """A newer request took this request's place before it finished."""


def _supersede(fut: Future) -> None:
    """Fail a not-yet-finished future with Superseded (no-op if it was cancelled or is done)."""
    if fut.done():
        return
    if fut.running() or fut.set_running_or_notify_cancel():
        fut.set_exception(Superseded())


class LatestWinsWorker:
    """A daemon thread running submitted callables, one waiting job per lane, newest wins."""

    def __init__(self, lanes: tuple[str, ...]):
        self.lanes = lanes
        self._waiting: dict[str, tuple[Callable[[], Any], Future, Progress] | None] = {lane: None for lane in lanes}
        self._stepping: dict[str, tuple[Generator, Future, Progress] | None] = {lane: None for lane in lanes}
        self._cond = threading.Condition()
        self._closed = False
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="workbench-render", daemon=True)
        self._thread.start()

    def submit(self, lane: str, fn: Callable[[], Any], progress: Progress = None) -> Future:
        """Queue fn in lane, superseding the lane's waiting job; returns a Future of fn's result.

        progress(value) receives what a stepped job yields (None values excepted), in the render thread."""
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the render worker is closed")
            old = self._waiting[lane]
            self._waiting[lane] = (fn, fut, progress)
            self._cond.notify()
        if old is not None:
            _supersede(old[1])
        return fut

    def busy(self) -> bool:
        """True while a job runs or waits."""
        with self._cond:
            return self._running or any(self._waiting.values()) or any(self._stepping.values())

    def close(self) -> None:
        """Stop the thread after the running step; waiting and unfinished stepped jobs are superseded."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=60)
        for slot in (*self._waiting.values(), *self._stepping.values()):
            if slot is not None:
                _supersede(slot[1])

    def _next(self) -> tuple[str, str] | None:
        """(lane, 'new' | 'step') of the next thing to run, by lane priority; None when idle."""
        for lane in self.lanes:
            if self._waiting[lane] is not None:
                return lane, "new"
            if self._stepping[lane] is not None:
                return lane, "step"
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._next() is None:
                    self._cond.wait()
                if self._closed:
                    return
                lane, kind = self._next()
                if kind == "new":
                    fn, fut, progress = self._waiting[lane]
                    self._waiting[lane] = None
                    stale, self._stepping[lane] = self._stepping[lane], None
                else:
                    (gen, fut, progress), stale = self._stepping[lane], None
                    self._stepping[lane] = None
                self._running = True
            try:
                if stale is not None:  # a newer job in the lane replaces an unfinished stepped one
                    stale[0].close()
                    _supersede(stale[1])
                if kind == "new":
                    if not fut.set_running_or_notify_cancel():  # the waiting client gave up
                        continue
                    gen = self._call(fn, fut)
                    if gen is None:
                        continue
                self._step(lane, gen, fut, progress)
            finally:
                with self._cond:
                    self._running = False

    @staticmethod
    def _call(fn: Callable[[], Any], fut: Future) -> Generator | None:
        """Run fn; set its result, or return it if it is a generator to be stepped."""
        try:
            result = fn()
        except BaseException as e:  # handed to the waiting request, which reports it
            fut.set_exception(e)
            return None
        if inspect.isgenerator(result):
            return result
        fut.set_result(result)
        return None

    def _step(self, lane: str, gen: Generator, fut: Future, progress: Progress) -> None:
        """Advance a stepped job once; finish its future when it returns or raises, else park it."""
        try:
            value = next(gen)
        except StopIteration as stop:
            fut.set_result(stop.value)
        except BaseException as e:
            fut.set_exception(e)
        else:
            if value is not None and progress is not None:
                progress(value)
            with self._cond:
                self._stepping[lane] = (gen, fut, progress)
