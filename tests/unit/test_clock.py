"""The discrete-event scheduler: participants take turns, time moves only when all of them wait, in a fixed order."""

from __future__ import annotations

import threading

from gpu_recovery.clock import SimClock


def run_participants(clock: SimClock, *targets) -> None:
    """Start each target on a participant thread, all at simulated 0 s, and wait (really) for all to end."""
    threads = [clock.thread_class()(target=target) for target in targets]
    # Started by a participant: none runs before all are started (from outside, the first would run at once).
    with clock.taking_part():
        for thread in threads:
            thread.start()
    assert clock.wait_idle(10.0)
    for thread in threads:
        thread.join(10.0)


def test_time_moves_to_each_wake_up_in_order_and_ties_keep_their_order() -> None:
    clock = SimClock()
    log: list[tuple[float, str]] = []

    def sleeper(name: str, seconds: float):
        def run() -> None:
            clock.sleep(seconds)
            log.append((clock.elapsed(), name))

        return run

    run_participants(clock, sleeper("a", 30), sleeper("b", 10), sleeper("c", 30), sleeper("d", 10))
    assert log == [(10, "b"), (10, "d"), (30, "a"), (30, "c")]
    assert clock.elapsed() == 30


def test_time_stands_still_while_any_participant_runs() -> None:
    clock = SimClock()
    seen: list[float] = []
    go = threading.Event()

    def busy() -> None:
        go.wait(5.0)  # real work, however long, takes no simulated time
        seen.append(clock.elapsed())

    def sleeper() -> None:
        clock.sleep(100)
        seen.append(clock.elapsed())

    threads = [clock.thread_class()(target=t) for t in (busy, sleeper)]
    for thread in threads:
        thread.start()
    assert not clock.wait_idle(0.2)
    go.set()
    assert clock.wait_idle(10.0)
    assert seen == [0.0, 100.0]


def test_event_wait_times_out_in_sim_time_or_wakes_when_set() -> None:
    clock = SimClock()
    event = clock.event()
    results: list[tuple[str, bool, float]] = []

    def waiter(name: str, timeout: float):
        def run() -> None:
            results.append((name, event.wait(timeout), clock.elapsed()))

        return run

    def setter() -> None:
        clock.sleep(50)
        event.set()

    run_participants(clock, waiter("short", 20), waiter("long", 500), setter)
    assert results == [("short", False, 20.0), ("long", True, 50.0)]
    assert clock.elapsed() == 50  # the long wait's timer died with it


def test_join_waits_for_the_thread_in_sim_time() -> None:
    clock = SimClock()
    results: list[tuple[bool, float]] = []

    def parent() -> None:
        child = clock.thread_class()(target=lambda: clock.sleep(300))
        child.start()
        child.join(timeout=100)
        results.append((child.is_alive(), clock.elapsed()))
        child.join()
        results.append((child.is_alive(), clock.elapsed()))

    run_participants(clock, parent)
    assert results == [(True, 100.0), (False, 300.0)]


def test_a_thread_outside_the_simulation_takes_part_on_request() -> None:
    clock = SimClock()
    log: list[str] = []
    with clock.taking_part():
        worker = clock.thread_class()(target=lambda: log.append(f"worker at {clock.elapsed()}"))
        worker.start()
        clock.sleep(0)  # gives the turn: the worker runs now, at 0 s
        clock.sleep(60)
        log.append(f"runner at {clock.elapsed()}")
    assert log == ["worker at 0.0", "runner at 60.0"]
