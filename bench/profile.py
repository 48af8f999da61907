"""A profile of a scenario run across all its threads: ``python -m bench.profile <scenario|storm-N>``.

cProfile sees only the thread that enables it, and the simulation runs on moto's threads (one at a time, see
gpu_recovery/clock.py). Here every thread started during the run gets its own profiler; the main thread's and
theirs are merged into one table, sorted by own time (``--sort`` for another pstats key). Times are each thread's
CPU time (``time.thread_time``): waiting for the scheduler's turn, or for a busy machine, costs nothing."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

from bench.storm import load
from gpu_recovery.simulate import run


@contextmanager
def every_thread_profiled() -> Iterator[list[cProfile.Profile]]:
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original: Callable[[threading.Thread], None] = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.runcall(original, self)

    main = cProfile.Profile(time.thread_time)
    profiles.append(main)
    with mock.patch.object(threading.Thread, "run", profiled_run):
        main.enable()
        try:
            yield profiles
        finally:
            main.disable()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", help="a shipped scenario, a scenario file, or storm-N")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default: tottime)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", metavar="FILE", help="also write the merged profile (pstats) to FILE")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    loaded = load(args.scenario)
    with every_thread_profiled() as profiles:
        report = run(loaded)
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    print(f"{loaded.name}: {'passed' if report.passed else 'FAILED'}, {len(profiles)} threads profiled")
    if args.save:
        stats.dump_stats(args.save)
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
