"""The resumable sweep runner and its result files, for any kind of run.

A sweep is a list of :class:`Run`: a spec (any hashable, picklable object with a ``check_record(record)`` method
that raises a ValueError saying why a record is not a finished run of it, such as
:class:`benchmarks.harness.RunSpec`) and the file its record goes to. :func:`run_sweep` runs every run whose file
does not hold a valid record, in worker processes, and writes one JSON file per finished run (atomically), so a
sweep resumes where it stopped. A file that does not load (truncated, empty, another run's record, a NaN return)
is named, set aside as ``<name>.json.broken`` and its run done again.

Two guards keep a result file written by one process at a time: a run holds an ``flock`` on ``<name>.json.lock``
while it trains, so two sweeps never do the same run at once (the second skips it), and the workers end with the
sweep that started them (no orphan finishing a run after its sweep was killed).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

#: ``runner(spec, progress_position) -> record``: a module-level function (the workers import it).
Runner = Callable[[Any, int], dict[str, Any]]


@dataclass(frozen=True)
class Run:
    """One run of a sweep: what to run (``spec``) and where its record goes (``file``, relative to the results root)."""

    spec: Any
    file: str

    @property
    def name(self) -> str:
        return self.file.removesuffix(".json")

    def path(self, root: Path) -> Path:
        return root / self.file


class BrokenResult(ValueError):
    """A result file that exists but does not hold a finished run of its spec."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_result(run: Run, root: Path) -> dict[str, Any] | None:
    """The run's record, None if its file does not exist; :class:`BrokenResult` if the file does not load as a
    finished run of ``run.spec``."""
    path = run.path(root)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise BrokenResult(path, f"not valid JSON ({'empty file' if not text.strip() else error})") from None
    if not isinstance(record, dict):
        raise BrokenResult(path, f"not a JSON object but {type(record).__name__}")
    try:
        run.spec.check_record(record)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BrokenResult(path, str(error)) from None
    return record


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def load_results(runs: Iterable[Run], root: Path) -> dict[Run, dict[str, Any]]:
    """The records of the finished runs among ``runs``; a broken file is named in a warning and counts as not
    finished (``run`` sets it aside and does the run again)."""
    records = {}
    for run in dict.fromkeys(runs):
        try:
            record = read_result(run, root)
        except BrokenResult as error:
            warn(f"broken result file {error}; counted as pending (the sweep's `run` sets it aside and re-runs it).")
            continue
        if record is not None:
            records[run] = record
    return records


def pending(runs: Iterable[Run], root: Path) -> list[tuple[Run, BrokenResult | None]]:
    """The runs whose file does not hold their finished record, each with what is wrong with its file if it exists."""
    found = []
    for run in dict.fromkeys(runs):
        try:
            if read_result(run, root) is None:
                found.append((run, None))
        except BrokenResult as error:
            found.append((run, error))
    return found


def set_aside(path: Path) -> Path:
    """Rename a broken result file to ``<name>.broken`` (``.broken.1``, ... if taken): evidence, not deleted."""
    target = path.with_name(path.name + ".broken")
    counter = 0
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.broken.{counter}")
    os.replace(path, target)
    return target


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write atomically: a reader (or a restarted sweep) sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[str | None]:
    """Hold the exclusive ``flock`` of the result file ``path`` (on ``<name>.lock`` beside it), without waiting.

    Yields None when this process holds it, else what the holder wrote into the lock file (its pid and host). The
    lock file is removed while still held, when the run is over: a process that opened it before then finds the run
    done once it gets the lock, and one that opens it later creates a new file.
    """
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            yield holder
            return
        try:
            same_file = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)  # the previous holder removed the file after this process opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode())
        yield None
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends (a pool's worker initializer): a sweep that is killed leaves no worker
    running on to write its result later. Linux delivers SIGTERM on the parent's death (``PR_SET_PDEATHSIG``);
    elsewhere a watchdog thread polls the parent pid."""
    armed = False
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    if not armed:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "done", "failed", "locked" (another sweep runs it) or "finished" (another sweep did)
    detail: str = ""


def _work(run: Run, root: Path, position: int, runner: Runner) -> Outcome:
    """Do one run, under its lock, and write its record."""
    path = run.path(root)
    with run_lock(path) as holder:
        if holder is not None:
            return Outcome(run.name, "locked", holder)
        try:
            if read_result(run, root) is not None:  # finished meanwhile by another sweep sharing this run
                return Outcome(run.name, "finished")
        except BrokenResult as error:
            warn(f"broken result file {error}; set aside as {set_aside(path).name}, running it again.")
        try:
            record = runner(run.spec, position)
            run.spec.check_record(record)
            write_json(path, record)
        except Exception:  # one failed run must not stop the sweep; the error goes to the log
            return Outcome(run.name, "failed", traceback.format_exc())
    return Outcome(run.name, "done")


def _worker(job: tuple[Run, Path, int, Runner], parent: int, outcome: Connection) -> None:
    """A worker process: one run, its outcome sent back to the sweep."""
    die_with_parent(parent)
    outcome.send(_work(*job))
    outcome.close()


def _outcomes(jobs: Sequence[tuple[Run, Path, Runner]], workers: int) -> Iterator[Outcome]:
    """Each job in a fresh spawned process (no forked torch state; a leak or a crash ends with its run), at most
    ``workers`` at a time, in order; the outcomes as they come. A worker that dies without sending one (killed, out
    of memory) is a failed run. Plain processes rather than a ``multiprocessing.Pool`` with ``maxtasksperchild=1``:
    that pool can hang for good at its ``join()`` when a worker exits just as the last task comes back."""
    context = mp.get_context("spawn")
    waiting = list(reversed(jobs))
    running: dict[Connection, tuple[Any, Run, int]] = {}
    free_positions = list(range(workers, 0, -1))  # one progress line per worker slot
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                run, root, runner = waiting.pop()
                position = free_positions.pop()
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_worker, args=((run, root, position, runner), os.getpid(), sender))
                process.start()
                sender.close()  # the worker holds the only writer: its exit makes the pipe readable (EOF)
                running[receiver] = (process, run, position)
            for receiver in wait(list(running)):
                process, run, position = running.pop(receiver)
                try:
                    outcome = receiver.recv()
                except EOFError:
                    outcome = None
                receiver.close()
                process.join()
                free_positions.append(position)
                yield outcome or Outcome(run.name, "failed", f"its worker ended with exit code {process.exitcode}")
    finally:
        for process, _, _ in running.values():
            process.terminate()
            process.join()


def run_sweep(runs: Sequence[Run], runner: Runner, root: Path, workers: int = 1) -> int:
    """Do every run whose file does not hold its finished record, in ``workers`` processes, in the given order.

    :param runs: The sweep (duplicates are run once).
    :param runner: Module-level function ``runner(spec, progress_position) -> record``.
    :param root: Results root.
    :param workers: Parallel worker processes.
    :return: The number of failed runs.
    """
    from tqdm import tqdm

    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}.")
    unique = list(dict.fromkeys(runs))
    todo = []
    for run, broken in pending(unique, root):
        if broken is not None:
            warn(f"broken result file {broken}; it will be set aside and run again.")
        todo.append(run)
    print(f"{len(unique)} runs in the sweep, {len(unique) - len(todo)} already done, {len(todo)} to run "
          f"with {workers} worker(s).", flush=True)  # fmt: skip
    failures, locked = 0, []
    with tqdm(total=len(todo), desc="sweep", position=0, unit="run", mininterval=5.0) as bar:
        for outcome in _outcomes([(run, root, runner) for run in todo], workers):
            bar.update(1)
            if outcome.status == "failed":
                failures += 1
                tqdm.write(f"FAILED {outcome.name}:\n{outcome.detail}")
            elif outcome.status == "locked":
                locked.append(outcome.name)
                tqdm.write(f"skipped {outcome.name}: another sweep is running it (lock held by {outcome.detail})")
            elif outcome.status == "finished":
                tqdm.write(f"skipped {outcome.name}: another sweep finished it")
            else:
                tqdm.write(f"{time.strftime('%H:%M:%S')} done {outcome.name}")
    if locked:
        print(f"{len(locked)} run(s) left to the sweep that holds their lock; run again after it to check them.")
    return failures
