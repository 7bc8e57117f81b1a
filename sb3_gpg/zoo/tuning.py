"""
Distributed ``-optimize`` that survives its workers: a study storage with Optuna's heartbeat.

Each running trial records a heartbeat in the storage every ``interval`` seconds. A worker killed mid-trial
(``kill -9``, a preempted node, out of memory) stops beating; once its trial has been silent for
``grace_period`` seconds, the next worker to start a trial marks it FAILED and queues a copy of it (same
parameters, state WAITING), which the next free worker runs. Without this, the trial stays RUNNING forever and its
parameters are never evaluated. Optuna's RDB storages (SQLite, PostgreSQL, MySQL) keep heartbeats; a journal file
(the Zoo's ``--storage path.log``) does not.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass

import optuna
from optuna.storages import RDBStorage

from sb3_gpg.arguments import check_int

try:  # Optuna >= 4.9 renamed the callback and RDBStorage's argument for it
    from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryCallback
except ImportError:  # pragma: no cover - older Optuna
    from optuna.storages import RetryFailedTrialCallback as RetryCallback  # type: ignore[no-redef]
_CALLBACK_ARGUMENT = (
    "heartbeat_stale_trial_callback"
    if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage.__init__).parameters
    else "failed_trial_callback"
)

#: How the Zoo tells a journal file from a database URL in ``--storage``.
JOURNAL_SUFFIX = ".log"


@dataclass(frozen=True)
class Heartbeat:
    """
    How a study notices a dead worker (``sb3-gpg train`` flags ``--heartbeat-interval``, ``--grace-period``,
    ``--max-retry``).

    :param interval: Seconds between two heartbeats of a running trial (Optuna's ``heartbeat_interval``).
    :param grace_period: Seconds without a heartbeat after which a running trial counts as dead; ``None``: twice
        the interval (Optuna's default). Longer than the longest pause of a live worker (a slow evaluation
        does not pause it: the heartbeat has its own thread).
    :param max_retry: How many times a dead worker's trial is queued again (a trial that kills its worker every time
        is given up after that).
    """

    interval: int = 60
    grace_period: int | None = None
    max_retry: int = 3

    def __post_init__(self) -> None:
        check_int("heartbeat_interval", self.interval)
        if self.grace_period is not None:
            check_int("grace_period", self.grace_period)
        check_int("max_retry", self.max_retry, minimum=0)


def is_journal(storage: str) -> bool:
    """:return: Whether the Zoo reads ``--storage`` as a journal file (else: an SQLAlchemy URL)."""
    return storage.endswith(JOURNAL_SUFFIX)


def heartbeat_storage(storage: str | None, heartbeat: Heartbeat) -> RDBStorage | None:
    """
    The storage of a study whose dead workers' trials are failed and retried.

    :param storage: The ``--storage`` value: an SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``), a
        journal file or ``None`` (in memory).
    :param heartbeat: The heartbeat settings.
    :return: An ``RDBStorage`` with heartbeats for a URL; ``None`` for a journal file or no storage, which have none
        (one process in memory has no other worker to recover it).
    """
    if storage is None or is_journal(storage):
        return None
    with warnings.catch_warnings():
        # Optuna flags the heartbeat as experimental (since 2.9) in every worker's output.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            storage,
            heartbeat_interval=heartbeat.interval,
            grace_period=heartbeat.grace_period,
            **{_CALLBACK_ARGUMENT: RetryCallback(max_retry=heartbeat.max_retry)},
        )
