"""Hyperparameter search with the RL Zoo: GPG's search space, and distributed studies that outlive their workers.

Workers are ``sb3-gpg train -optimize`` processes with tiny budgets (a few thousand CartPole steps). Their studies live
in a journal file, SQLite, or a PostgreSQL server that this module starts for itself.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from gymnasium import spaces
from optuna.trial import TrialState
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG, zoo
from sb3_gpg.cli import main
from tests.test_zoo import SUBPROCESS_ENV

# Every worker's trials draw from the same search space only if they have the same budget (it bounds n_envs and
# n_steps), so all workers of a study get these flags.
OPTIMIZE = ["-m", "sb3_gpg", "train", "--algo", "gpg", "--env", "CartPole-v1", "-optimize", "--n-timesteps", "2000"]
OPTIMIZE += ["--n-jobs", "1", "--sampler", "random", "--pruner", "none", "--n-evaluations", "1", "--num-threads", "1"]
OPTIMIZE += ["--no-optim-plots"]
# Heartbeats fast enough for a test: a worker silent for 4 s counts as dead.
HEARTBEAT = ["--heartbeat-interval", "1", "--grace-period", "4"]
GRACE_PERIOD = 4


def test_sampler_gives_valid_gpg_arguments() -> None:
    space = zoo.SearchSpace.for_experiment(spaces.Box(-1, 1, (4,)), n_timesteps=2000)
    assert space.n_envs == (4, 8, 16, 32) and space.max_n_steps_pow == 5  # every rollout fits 2000 steps
    assert space.binnings == ("time", "none", "space", "space_time")
    assert zoo.SearchSpace.for_experiment(spaces.Discrete(5), 10**6).binnings == ("time", "none", "state")
    assert zoo.SearchSpace.for_experiment(None, 10**6).max_n_steps_pow == 11

    params = {
        "n_envs": 8,
        "n_steps_pow": 6,
        "n_minibatches": 4,
        "n_epochs": 4,
        "learning_rate": 1e-3,
        "clip_range": 0.2,
        "ent_coef": 0.01,
        "one_minus_gamma": 0.01,
        "binning": "space_time",
        "bin_size": 0.5,
        "min_bin_samples": 4,
        "collection": "episodes",
        "shared_starts": 2,
    }
    with zoo.drawing_from(zoo.SearchSpace.for_experiment(spaces.Box(-1, 1, (4,)), n_timesteps=10**5)):
        sampled = zoo.sample_gpg_params(optuna.trial.FixedTrial(params), 0, 8, {})
    assert sampled["batch_size"] == 128 and sampled["n_steps"] == 64 and sampled["gamma"] == pytest.approx(0.99)
    assert "n_envs" not in sampled and sampled["history_weight"] == 0.0  # no history with shared starts
    assert (sampled["min_bin_samples"], sampled["bin_fallback"], sampled["shared_starts"]) == (4, "shrink", 2)
    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8), n_steps=sampled.pop("n_steps"), **sampled, device="cpu")
    assert model.binning == "space_time" and model.bin_size == 0.5
    # The window or carried trajectories: independent starts, and the bins' history drawn instead.
    carry = {**params, "binning": "time", "collection": "carry", "history_weight": 0.9}
    for key in ("bin_size", "min_bin_samples", "shared_starts"):
        del carry[key]
    with zoo.drawing_from(zoo.SearchSpace.for_experiment(spaces.Box(-1, 1, (4,)), n_timesteps=10**5)):
        sampled = zoo.sample_gpg_params(optuna.trial.FixedTrial(carry), 0, 8, {})
    assert (sampled["collection"], sampled["history_weight"]) == ("carry", 0.9)
    # The keys it did not draw are at their defaults, so that the entry's own values (the Zoo starts each trial
    # from the entry) do not slip in: an entry with shared_starts 2 would make this trial of carry fail.
    assert (sampled["shared_starts"], sampled["bin_size"], sampled["min_bin_samples"]) == (1, None, 0)
    entry = {"collection": "episodes", "shared_starts": 2, "binning": "space", "bin_size": 0.5, "min_bin_samples": 4}
    trial_kwargs = {**entry, **sampled}  # as the Zoo's objective merges them
    GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8), n_steps=trial_kwargs.pop("n_steps"), **trial_kwargs)
    assert zoo.convert_gpg_params(params)["n_envs"] == 8
    with pytest.raises(ValueError, match="no n_envs"):
        zoo.convert_gpg_params({k: v for k, v in params.items() if k != "n_envs"})


def test_sampler_draws_gsde_for_continuous_actions_only() -> None:
    params = {"n_steps_pow": 6, "n_minibatches": 4, "n_epochs": 4, "learning_rate": 1e-3, "clip_range": 0.2}
    params |= {"ent_coef": 1e-3, "one_minus_gamma": 0.01, "binning": "time", "collection": "window"}
    params |= {"n_envs": 4, "history_weight": 0.0, "use_sde": True}
    space = zoo.SearchSpace.for_experiment(spaces.Box(-1, 1, (3,)), n_timesteps=10**5)
    with zoo.drawing_from(space):
        # The Zoo passes the Box action dimension as n_actions (Pendulum: 1), 0 for discrete actions.
        continuous = zoo.sample_gpg_params(optuna.trial.FixedTrial(params), 1, 4, {})
        discrete = zoo.sample_gpg_params(optuna.trial.FixedTrial(params), 0, 4, {})
    assert continuous["use_sde"] is True and discrete["use_sde"] is False
    assert zoo.convert_gpg_params(params, n_envs=4)["use_sde"] is True  # --trial-id trains with the trial's value
    model = GPG("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=4), n_steps=continuous.pop("n_steps"), **continuous)
    assert model.use_sde


def test_the_novelty_bonus_is_drawn_for_a_few_bounded_observation_dimensions_only() -> None:
    mountain_car = spaces.Box(low=np.array([-1.2, -0.07]), high=np.array([0.6, 0.07]))
    assert zoo.SearchSpace.for_experiment(mountain_car, 10**5).bonus
    assert not zoo.SearchSpace.for_experiment(spaces.Box(-np.inf, np.inf, (4,)), 10**5).bonus  # CartPole: unbounded
    assert not zoo.SearchSpace.for_experiment(spaces.Box(-1, 1, (17,)), 10**5).bonus  # every state a new cell
    assert not zoo.SearchSpace.for_experiment(spaces.Discrete(5), 10**5).bonus
    own = {zoo.BONUS_WRAPPER: {"beta": 0.1, "cells": 64}}  # the entry's own bonus is what a trial replaces
    assert zoo.SearchSpace.for_experiment(mountain_car, 10**5, own).bonus
    assert not zoo.SearchSpace.for_experiment(mountain_car, 10**5, "my_package.MyVecWrapper").bonus  # kept, not dropped

    assert zoo.sample_bonus(optuna.trial.FixedTrial({"bonus_beta": 0.3, "bonus_cells": 16})) == {
        zoo.BONUS_WRAPPER: {"beta": 0.3, "cells": 16}
    }
    assert zoo.sample_bonus(optuna.trial.FixedTrial({"bonus_beta": 0.0})) is None  # no cells drawn without a bonus
    params = {"n_envs": 4, "n_steps_pow": 6, "n_minibatches": 4, "n_epochs": 4, "learning_rate": 1e-3}
    params |= {"clip_range": 0.2, "ent_coef": 1e-3, "one_minus_gamma": 0.01, "binning": "time", "collection": "window"}
    # --trial-id trains with the trial's bonus, or none, in place of the entry's; a study without it keeps the entry's.
    assert zoo.convert_gpg_params({**params, "bonus_beta": 0.1, "bonus_cells": 32})["vec_env_wrapper"] == {
        zoo.BONUS_WRAPPER: {"beta": 0.1, "cells": 32}
    }
    assert zoo.convert_gpg_params({**params, "bonus_beta": 0.0})["vec_env_wrapper"] is None
    assert "vec_env_wrapper" not in zoo.convert_gpg_params(params)


def test_optimize_trains_each_trial_with_its_own_bonus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_gpg.exploration import VecCountBonus

    built = []
    original = VecCountBonus.__init__

    def spy(self: VecCountBonus, venv: object, beta: float = 0.1, cells: int = 64, **kwargs: object) -> None:
        built.append((beta, cells, venv.num_envs))
        original(self, venv, beta, cells, **kwargs)

    monkeypatch.setattr(VecCountBonus, "__init__", spy)
    storage = str(tmp_path / "study.log")
    study = optuna.create_study(
        study_name="s", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage)),
        direction="maximize",
    )  # fmt: skip
    study.enqueue_trial({"bonus_beta": 0.3, "bonus_cells": 16, "n_envs": 4})
    study.enqueue_trial({"bonus_beta": 0.0, "n_envs": 4})
    entry = {"policy": "MlpPolicy", "n_timesteps": 512, "vec_env_wrapper": {zoo.BONUS_WRAPPER: {"beta": 0.1, "cells": 64}}}
    config = tmp_path / "gpg.yml"
    config.write_text(yaml.safe_dump({"MountainCar-v0": entry}))
    command = ["train", "--algo", "gpg", "--env", "MountainCar-v0", "--conf-file", str(config), "-optimize"]
    command += ["--n-timesteps", "512", "--n-trials", "2"]
    command += ["--n-jobs", "1", "--sampler", "random", "--pruner", "none", "--n-evaluations", "1", "--eval-episodes", "1"]
    command += ["--num-threads", "1", "--no-optim-plots", "--storage", storage, "--study-name", "s", "-f", str(tmp_path)]
    assert main(command) == 0
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert [trial.params["bonus_beta"] for trial in trials] == [0.3, 0.0]
    # The entry's own bonus (beta 0.1, 64 cells) is built only where the entry is checked (one env, to read its
    # observation space), before the trials: the first trial trains and evaluates on its own bonus (a wrapper for
    # its 4 training envs, one for the evaluation env), the second on none.
    assert set(built[:-2]) == {(0.1, 64, 1)} and built[-2:] == [(0.3, 16, 4), (0.3, 16, 1)]


def _interruptible() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and the ignoring is inherited
    # (a CI runner started with `&`): Python then never raises KeyboardInterrupt. A worker in a terminal has it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_worker(cwd: Path, storage: str, study_name: str, seed: int, *args: str) -> subprocess.Popen:
    """An ``sb3-gpg train -optimize`` worker of a study, as started in a terminal (Ctrl-C interrupts it); its output
    goes to ``cwd/worker-SEED.txt``."""
    command = [sys.executable, *OPTIMIZE, "--storage", storage, "--study-name", study_name, "--seed", str(seed), *args]
    with open(cwd / f"worker-{seed}.txt", "w") as output:
        return subprocess.Popen([*command, "-f", f"logs{seed}"], cwd=cwd, env=SUBPROCESS_ENV, stdout=output, stderr=output,
                                preexec_fn=_interruptible)  # fmt: skip


def output_of(cwd: Path, worker: subprocess.Popen) -> str:
    seed = worker.args[worker.args.index("--seed") + 1]
    return (cwd / f"worker-{seed}.txt").read_text()


def finish(cwd: Path, worker: subprocess.Popen, timeout: float = 120) -> str:
    """Wait for a worker to end; it must end well. :return: Its output."""
    worker.wait(timeout=timeout)
    output = output_of(cwd, worker)
    assert worker.returncode == 0, output[-3000:]
    return output


def wait_until(condition: Callable[[], bool], cwd: Path, worker: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert worker.poll() is None, f"the worker ended before {what}: {output_of(cwd, worker)[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s: {output_of(cwd, worker)[-3000:]}"
        time.sleep(0.1)


def running_trial_of(study: optuna.Study, worker: subprocess.Popen) -> optuna.trial.FrozenTrial | None:
    # GPGExperimentManager records the worker (host:pid) of each trial as it starts.
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("worker", "").endswith(f":{worker.pid}"):
            return trial
    return None


def training_trial_of(study: optuna.Study, worker: subprocess.Popen) -> optuna.trial.FrozenTrial | None:
    """The worker's running trial once its hyperparameters are all drawn (the sampler records the batch size last):
    the trial is training, past the storage writes of its start."""
    trial = running_trial_of(study, worker)
    return trial if trial is not None and "batch_size" in trial.user_attrs else None


@pytest.mark.slow
@pytest.mark.parametrize("storage_kind", ["journal", "sqlite"])
def test_optimize_with_two_workers_sharing_one_study(tmp_path: Path, storage_kind: str) -> None:
    # A path ending in .log is a JournalFileBackend in the Zoo; anything else is an RDB URL for Optuna.
    storage = str(tmp_path / "study.log") if storage_kind == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    if storage_kind == "sqlite":  # both workers would race to create the SQLite schema: create it first
        optuna.create_study(storage=storage, study_name="s", direction="maximize")
    # The seeds seed the random sampler: these two draw cheap trials (few epochs and minibatches), which keeps the
    # test quick; with others it is slower, not wrong.
    workers = [start_worker(tmp_path, storage, "s", seed, "--n-trials", "2", "--eval-episodes", "2") for seed in (5, 7)]
    for worker in workers:
        finish(tmp_path, worker, timeout=300)

    if storage_kind == "journal":
        journal = optuna.storages.journal.JournalFileBackend(storage)
        study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(journal))
    else:
        study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 4
    assert {worker.pid for worker in workers} == {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials}
    for trial in trials:
        assert trial.state == TrialState.COMPLETE
        assert {"n_envs", "n_steps_pow", "learning_rate", "binning"} <= set(trial.params)
        assert trial.params["n_envs"] * 2 ** trial.params["n_steps_pow"] <= 2000


# ----------------------------------------------------------------------------------------------------------
# Dead workers: heartbeats


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_heartbeat_storage_fails_and_retries_a_silent_trial(tmp_path: Path) -> None:
    heartbeat = zoo.Heartbeat(interval=1, grace_period=1, max_retry=1)
    storage = zoo.heartbeat_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat)
    assert zoo.heartbeat_storage(str(tmp_path / "study.log"), heartbeat) is None  # a journal keeps no heartbeats
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)  # the last sign of life of its worker
    time.sleep(2.5)  # more than the grace period, in SQLite's whole seconds

    # The next trial that any worker starts notices the silent one: it fails it, and runs its copy.
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    first, retry = study.get_trials()
    assert first.state == TrialState.FAIL
    assert retry.state == TrialState.COMPLETE and retry.params == first.params and retry.value == first.params["x"]
    assert retry.system_attrs["failed_trial"] == first.number


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--heartbeat-interval", "0", "--heartbeat-interval: heartbeat_interval=0 must be an integer >= 1."),
        ("--grace-period", "-5", "--grace-period: grace_period=-5 must be an integer >= 1."),
        ("--max-retry", "-1", "--max-retry: max_retry=-1 must be an integer >= 0."),
    ],
)
def test_bad_heartbeat_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str) -> None:
    assert main(["train", "--algo", "gpg", "--env", "CartPole-v1", "-optimize", "-f", str(tmp_path), flag, value]) == 2
    assert capsys.readouterr().err == f"sb3-gpg train: error: {message}\n"


def postgres_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on the PATH, else where Debian's ``postgresql`` package puts them
    (``/usr/lib/postgresql/VERSION/bin``, off the PATH), the newest version first."""
    on_path = shutil.which("pg_ctl")
    folders = [Path(on_path).resolve().parent] if on_path else []
    debian = [folder for folder in Path("/usr/lib/postgresql").glob("*/bin") if folder.parent.name.isdigit()]
    folders += sorted(debian, key=lambda folder: int(folder.parent.name), reverse=True)
    return next((folder for folder in folders if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()), None)


def start_postgres(binaries: Path, cleanup: contextlib.ExitStack) -> str:
    """
    A PostgreSQL server in a temporary folder, trusting local connections, stopped by ``cleanup``.

    initdb and postgres refuse to run as root: as root, they run as the ``postgres`` user (Debian's package makes
    it) or ``nobody``, in a folder of theirs outside pytest's ``tmp_path`` (which only root may enter).

    :return: Its SQLAlchemy URL.
    """
    as_user: dict = {}
    folder = Path(tempfile.mkdtemp(prefix="sb3-gpg-postgres-"))
    cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        os.chown(folder, user.pw_uid, user.pw_gid)

    def run(program: str, *args: str | Path) -> None:
        subprocess.run(
            [binaries / program, *args], cwd=folder, check=True, capture_output=True, text=True, timeout=60, **as_user
        )

    data = folder / "data"
    run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run("pg_ctl", "-D", data, "-l", folder / "server.log", "-o", options, "-w", "-t", "60", "start")
    cleanup.callback(run, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture(scope="module")
def postgresql_url() -> Iterator[str]:
    """A PostgreSQL server of this module's own: the system's binaries (Debian's ``postgresql`` package) where there
    are some, else the ``pgserver`` package's bundled server (not as root); skipped where neither can start one."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg is not installed (pip install 'psycopg[binary]')")
    failures, url = [], None
    with contextlib.ExitStack() as cleanup:
        binaries = postgres_binaries()
        if binaries is None:
            failures.append("no initdb/pg_ctl on the PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        else:
            try:
                url = start_postgres(binaries, cleanup)
            except (OSError, subprocess.SubprocessError) as error:
                failures.append(f"{binaries} failed: {error} {getattr(error, 'stderr', '') or ''}".strip())
        if url is None and os.geteuid() == 0:
            # As root, pgserver adds a system user and opens the folders above its own to everyone: not in a test.
            failures.append("pgserver is not used as root")
        elif url is None:
            try:
                import pgserver
            except ImportError:
                failures.append("the pgserver package is not installed (pip install pgserver)")
            else:
                server = pgserver.get_server(cleanup.enter_context(tempfile.TemporaryDirectory()), cleanup_mode="stop")
                cleanup.callback(server.cleanup)
                url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
        if url is None:
            pytest.skip(f"No PostgreSQL server could be started: {'; '.join(failures)}.")
        yield url


def test_killed_worker_trial_is_failed_and_retried(tmp_path: Path, postgresql_url: str) -> None:
    """Two workers share a study on a PostgreSQL server; one is killed with SIGKILL mid-trial. Its trial is failed
    once it has been silent for the grace period and runs again, once: no trial is lost, none is left RUNNING."""
    storage, name = postgresql_url, "killed-worker"
    optuna.create_study(storage=storage, study_name=name, direction="maximize")  # the tables, before workers race for them
    study = optuna.load_study(study_name=name, storage=storage)
    # Its evaluation of 10**5 episodes outlasts the test: the worker is surely mid-trial when it is killed. The
    # seeds draw cheap trials (few epochs and minibatches): the test is quicker, not different, with them.
    doomed = start_worker(tmp_path, storage, name, 7, "--n-trials", "1", "--eval-episodes", "100000", *HEARTBEAT)
    survivor = start_worker(tmp_path, storage, name, 5, "--n-trials", "1", "--eval-episodes", "2", *HEARTBEAT)
    try:
        # Killed mid-training.
        wait_until(lambda: training_trial_of(study, doomed) is not None, tmp_path, doomed, "training trial")
        killed = running_trial_of(study, doomed)
        # The heartbeat thread records its first beat as the trial starts; Optuna never counts as dead a trial
        # without one. One interval on, it surely has.
        time.sleep(1.5)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=60)
        killed_at = time.monotonic()
        finish(tmp_path, survivor)
        # A worker (re)started after the grace period notices the silent trial if the survivor has not.
        time.sleep(max(0.0, killed_at + GRACE_PERIOD + 1 - time.monotonic()))
        restarted = start_worker(tmp_path, storage, name, 3, "--n-trials", "1", "--eval-episodes", "2", *HEARTBEAT)
        finish(tmp_path, restarted)
    finally:
        for worker in (doomed, survivor):
            if worker.poll() is None:
                worker.kill()

    trials = {trial.number: trial for trial in study.get_trials()}
    assert killed is not None and trials[killed.number].state == TrialState.FAIL
    retries = [trial for trial in trials.values() if trial.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1, retries  # retried once, not once per worker that noticed it
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == trials[killed.number].params == killed.params
    assert retries[0].user_attrs["worker"] != killed.user_attrs["worker"]
    # The survivor's trial and the restarted worker's, one of them the retry; nothing RUNNING or WAITING.
    assert len(trials) == 3
    assert sorted(trial.state.name for trial in trials.values()) == ["COMPLETE", "COMPLETE", "FAIL"]


def test_ctrl_c_before_any_trial_completed(tmp_path: Path) -> None:
    """SIGINT during the first trial: the worker ends cleanly (a message, no crash), its trial FAILED.

    The exit status is 0, or SIGINT's where the interrupt landed in code CPython runs through ``exec`` (the first
    model's optimizer imports ``torch._dynamo``, whose dataclasses are made that way): CPython then marks the
    interrupt unhandled even though it was caught, and exits by the signal after a normal end (a fresh checkout's
    first import, without bytecode caches, makes that window seconds long)."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="interrupted", direction="maximize")
    worker = start_worker(tmp_path, storage, "interrupted", 7, "--n-trials", "1", "--eval-episodes", "100000")
    try:
        # Interrupted mid-training, as a user's Ctrl-C most likely lands, not in the storage writes of the trial's start.
        wait_until(lambda: training_trial_of(study, worker) is not None, tmp_path, worker, "training trial")
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGINT did not end the worker: {output_of(tmp_path, worker)[-3000:]}")
    finally:
        if worker.poll() is None:
            worker.kill()
    output = output_of(tmp_path, worker)
    assert worker.returncode in (0, -signal.SIGINT), output[-3000:]
    # Optuna logs the interrupted trial, with where the KeyboardInterrupt hit it; the Zoo's report then ends the run.
    assert output.rstrip().endswith("No trial of study 'interrupted' has completed (1 FAIL): no best trial to report.")
    assert "No trials are completed yet" not in output
    assert [trial.state for trial in study.get_trials()] == [TrialState.FAIL]
