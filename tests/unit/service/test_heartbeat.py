"""Heartbeat: beats while the block runs, none after it, and no thread for short work."""

from __future__ import annotations

import itertools
import threading
import time

from deposit_services.service.heartbeat import Heartbeat


def test_beats_repeatedly_while_the_block_runs() -> None:
    beats: list[float] = []
    with Heartbeat(0.05, lambda: beats.append(time.monotonic())):
        time.sleep(0.4)
    assert len(beats) >= 3
    assert all(b - a >= 0.04 for a, b in itertools.pairwise(beats))


def test_no_beat_runs_or_starts_after_the_block() -> None:
    running = threading.Event()
    release = threading.Event()
    after: list[bool] = []
    left = threading.Event()

    def beat() -> None:
        if left.is_set():
            after.append(True)
        running.set()
        release.wait(5)

    done = threading.Event()

    def work() -> None:
        with Heartbeat(0.02, beat):
            assert running.wait(5)
        left.set()
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    assert running.wait(5)
    time.sleep(0.1)
    assert not done.is_set(), "__exit__ returned while a beat was still running"
    release.set()
    thread.join(5)
    assert done.is_set()
    time.sleep(0.1)
    assert after == []


def test_short_work_starts_no_beat_thread() -> None:
    names: list[str] = []
    before = {t.ident for t in threading.enumerate()}
    for n in range(50):
        with Heartbeat(30.0, lambda: names.append("beat"), name=f"short-{n}"):
            pass
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert names == []
    assert not any(name.startswith("short-") for name in started)


def test_a_failing_beat_does_not_stop_the_beating() -> None:
    calls: list[int] = []

    def beat() -> None:
        calls.append(1)
        raise RuntimeError("renewal failed")

    with Heartbeat(0.03, beat):
        time.sleep(0.3)
    assert len(calls) >= 2


def test_a_slow_beat_does_not_delay_another_heartbeat() -> None:
    stuck = threading.Event()
    fast: list[float] = []
    with Heartbeat(0.02, lambda: stuck.wait(5)):
        with Heartbeat(0.05, lambda: fast.append(time.monotonic())):
            time.sleep(0.4)
        stuck.set()
    assert len(fast) >= 3


def test_a_sooner_heartbeat_wakes_the_timer_waiting_for_a_later_one() -> None:
    """The timer is woken only for a beat due before the one it waits for: a short
    interval entered inside a long one still beats on time."""
    ticking, beat = threading.Event(), threading.Event()
    with Heartbeat(30.0, lambda: None):
        with Heartbeat(0.001, ticking.set):  # the timer thread runs and has fired
            assert ticking.wait(5)
        with Heartbeat(0.05, beat.set):
            assert beat.wait(5), "the timer slept through a beat due before its next one"
