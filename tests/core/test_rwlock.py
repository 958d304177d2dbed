"""The readers-writer lock: readers share it, a writer has it alone and is not starved by readers."""

from __future__ import annotations

import threading

from bastion.core.rwlock import RWLock


def test_readers_share_and_a_writer_waits_for_them() -> None:
    lock = RWLock()
    inside = threading.Barrier(3)  # two readers and this thread
    release = threading.Event()
    order: list[str] = []

    def reader(name: str) -> None:
        with lock.read():
            inside.wait()  # both readers hold the lock at once, or this never returns
            release.wait()
            order.append(name)

    def writer() -> None:
        with lock.write():
            order.append("writer")

    readers = [threading.Thread(target=reader, args=(f"r{i}",)) for i in range(2)]
    for t in readers:
        t.start()
    inside.wait(timeout=30)
    assert lock.readers == 2
    w = threading.Thread(target=writer)
    w.start()
    release.set()
    for t in [*readers, w]:
        t.join(timeout=30)
    assert order[-1] == "writer" and sorted(order[:2]) == ["r0", "r1"]


def test_a_waiting_writer_goes_before_new_readers() -> None:
    lock = RWLock()
    order: list[str] = []
    first_in, let_go = threading.Event(), threading.Event()

    def first_reader() -> None:
        with lock.read():
            first_in.set()
            let_go.wait()
            order.append("r0")

    def writer() -> None:
        with lock.write():
            order.append("writer")

    def late_reader() -> None:
        with lock.read():
            order.append("r1")

    r0 = threading.Thread(target=first_reader)
    r0.start()
    first_in.wait(timeout=30)
    w = threading.Thread(target=writer)
    w.start()
    while True:  # the writer is queued once it counts as waiting
        with lock._cond:
            if lock._writers_waiting:
                break
    r1 = threading.Thread(target=late_reader)
    r1.start()
    let_go.set()
    for t in (r0, w, r1):
        t.join(timeout=30)
    assert order == ["r0", "writer", "r1"]
