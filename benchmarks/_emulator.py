"""The Firestore emulator as the store benchmarks use it: started on loopback, pinned apart, idle.

In production Firestore is remote; here its stand-in is a JVM on the same two CPUs. The
benchmarks keep it on the last CPU and themselves on the others, and wait for it to go idle
before a timed loop, so what it still does for an earlier run does not land in the next one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from firestore_emulator import FirestoreEmulator  # noqa: E402  (tests/ helper, reused)


def pin_apart(emulator: FirestoreEmulator) -> None:
    """Keep the emulator's JVM on the last CPU and this process on the others, so its work
    (hundreds of µs per document) does not land on the measured threads' CPU. Both arms of
    every ratio run under the same placement."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or emulator.process is None:
        return
    for tid in os.listdir(f"/proc/{emulator.process.pid}/task"):
        os.sched_setaffinity(int(tid), {cpus[-1]})
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), set(cpus[:-1]))


def wait_idle(emulator: FirestoreEmulator, timeout: float = 10.0) -> None:
    """Until the emulator has used under 20 ms of CPU in 0.25 s: what it still does for an
    earlier run (JIT, GC, compaction) must not land in the next one's timing."""
    if emulator.process is None:
        return
    pid = emulator.process.pid

    def cpu() -> int:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks

    tick, deadline = os.sysconf("SC_CLK_TCK"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu()
        time.sleep(0.25)
        if (cpu() - before) / tick < 0.02:
            return


@contextmanager
def running_emulator() -> Iterator[FirestoreEmulator]:
    """A started emulator, ``FIRESTORE_EMULATOR_HOST`` set, pinned apart; stopped at the end.
    Fails loudly (no java, no jar) as the tests do."""
    emulator = FirestoreEmulator(Path(tempfile.mkdtemp(prefix="bench-firestore-")))
    emulator.start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
    pin_apart(emulator)
    try:
        yield emulator
    finally:
        emulator.stop()
