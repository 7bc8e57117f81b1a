"""The RL Zoo integration end to end: the ``sb3-gpg`` command line, gpg.yml, checks and distributed tuning.

Budgets are tiny (a few thousand CartPole steps): these tests check the plumbing, not learning.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import optuna
import pytest
import yaml
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env

from sb3_gpg import GPG, zoo
from sb3_gpg.cli import main

REPO = Path(__file__).resolve().parent.parent
# Subprocesses see this checkout (as PYTHONPATH users do), one torch thread each (tests share 2 cores).
SUBPROCESS_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
TINY = ["-n", "1024", "--num-threads", "1", "--eval-freq", "-1", "--verbose", "0"]


def run_module(*args: str, cwd: Path, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env or SUBPROCESS_ENV, capture_output=True, text=True, timeout=timeout
    )


def write_config(path: Path, entry: dict, env_id: str = "CartPole-v1") -> str:
    path.write_text(yaml.safe_dump({env_id: entry}))
    return str(path)


BASE_ENTRY = {"policy": "MlpPolicy", "n_timesteps": 512, "n_envs": 2, "n_steps": 64, "batch_size": 64, "binning": "time"}


# ----------------------------------------------------------------------------------------------------------
# Registration


def test_import_registers_nothing(tmp_path: Path) -> None:
    code = (
        "import sb3_gpg, sb3_gpg.zoo, rl_zoo3; from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER;"
        "assert 'gpg' not in rl_zoo3.ALGOS and 'gpg' not in HYPERPARAMS_SAMPLER;"
        "sb3_gpg.zoo.register(); assert rl_zoo3.ALGOS['gpg'] is sb3_gpg.GPG; print('ok')"
    )
    result = run_module("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_register_fills_the_zoo_tables() -> None:
    from rl_zoo3 import ALGOS
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    zoo.register()
    zoo.register()  # idempotent
    assert ALGOS["gpg"] is GPG and zoo.is_registered()
    assert HYPERPARAMS_SAMPLER["gpg"] is zoo.sample_gpg_params
    assert HYPERPARAMS_CONVERTER["gpg"] is zoo.convert_gpg_params
    assert ALGOS["ppo"].__name__ == "PPO"  # the Zoo's own algorithms are untouched


def test_train_help_lists_gpg_among_the_zoo_algorithms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "-h"]) == 0
    usage = capsys.readouterr().out
    assert "sb3-gpg train" in usage and "gpg" in usage and "ppo" in usage and "--conf-file" in usage


# ----------------------------------------------------------------------------------------------------------
# The command line end to end


def test_train_gpg_then_load_and_enjoy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m sb3_gpg train`` with the packaged gpg.yml, evaluations, progress bar and tensorboard logs;
    the model then loads with GPG.load, and enjoy, all_plots and record_video use it."""
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    args = ["-m", "sb3_gpg", "train", "--algo", "gpg", "--env", "CartPole-v1", "-f", "logs", "--seed", "0"]
    args += ["-n", "2048", "--num-threads", "1", "--eval-freq", "1024", "--eval-episodes", "2", "-P"]
    args += ["-tb", "tb"] if tensorboard else []
    result = run_module(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Loading hyperparameters from: {zoo.default_config_path()}" in result.stdout

    run = tmp_path / "logs" / "gpg" / "CartPole-v1_1"
    saved = yaml.load((run / "CartPole-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)  # as the Zoo reads it
    entry = zoo.load_config(str(zoo.default_config_path()))["CartPole-v1"]
    assert (saved["binning"], saved["collection"]) == (entry["binning"], entry["collection"])
    assert (run / "evaluations.npz").is_file() and (run / "best_model.zip").is_file()
    if tensorboard:
        assert list((tmp_path / "tb" / "CartPole-v1").glob("GPG_1/events.out.tfevents.*"))

    model = GPG.load(run / "CartPole-v1.zip", device="cpu")
    assert model.binning == "time" and model.n_envs == 8 and model.num_timesteps >= 2048

    capsys.readouterr()
    folder = str(tmp_path / "logs")
    assert (
        main(["enjoy", "--algo", "gpg", "--env", "CartPole-v1", "-f", folder, "--no-render", "-n", "600", "--deterministic"])
        == 0
    )
    assert "Mean reward:" in capsys.readouterr().out

    # The Zoo's plots and videos of the run, through the same command.
    if importlib.util.find_spec("seaborn") is not None:
        import matplotlib

        matplotlib.use("Agg")
        plots = tmp_path / "plots"
        assert main(["all_plots", "-a", "gpg", "-e", "CartPole-v1", "-f", folder, "--no-display", "-o", str(plots)]) == 0
        assert plots.with_suffix(".pkl").is_file()
    if importlib.util.find_spec("moviepy") is not None and importlib.util.find_spec("pygame") is not None:
        monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # pygame renders off screen
        videos = tmp_path / "videos"
        assert (
            main(["record_video", "--algo", "gpg", "--env", "CartPole-v1", "-f", folder, "-n", "50", "-o", str(videos)]) == 0
        )
        assert list(videos.glob("final-model-gpg-CartPole-v1-*.mp4"))


def test_train_ppo_through_the_same_command(tmp_path: Path) -> None:
    assert main(["train", "--algo", "ppo", "--env", "CartPole-v1", "-f", str(tmp_path), "--seed", "0", *TINY]) == 0
    assert (tmp_path / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_train_on_a_batched_vec_env_backend(tmp_path: Path, backend: str) -> None:
    if backend == "envpool":
        pytest.importorskip("envpool")
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path), "--seed", "0", "--vec-env", backend]
    assert main([*args, *TINY, "-params", "n_envs:16", "n_steps:32", "batch_size:128"]) == 0
    run = tmp_path / "gpg" / "CartPole-v1_1"
    model = GPG.load(run / "CartPole-v1.zip")
    assert model.n_envs == 16
    # The Zoo's plot_train reads the monitor file the batched env writes.
    assert (run / "batched.monitor.csv").read_text().count("\n") > 3


def test_unknown_vec_env_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path), "--vec-env", "jax"]
    assert main([*args, *TINY]) == 2
    assert "Unknown --vec-env 'jax': valid backends are dummy, subproc, gymnasium, envpool" in capsys.readouterr().err


def test_conf_file_wins_over_the_packaged_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mine.yml", {**BASE_ENTRY, "binning": "none", "collection": "episodes"})
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path), "--conf-file", config, *TINY]
    assert main(args) == 0
    model = GPG.load(tmp_path / "gpg" / "CartPole-v1_1" / "CartPole-v1.zip", device="cpu")
    assert (model.binning, model.collection, model.n_envs) == ("none", "episodes", 2)


# ----------------------------------------------------------------------------------------------------------
# Bad input stops before training, with the key, the file and what is valid


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({**BASE_ENTRY, "gae_lambda": 0.95}, ["'gae_lambda'", "GPG has no value function", "clip_range_vf"]),
        ({**BASE_ENTRY, "vf_coef": 0.5}, ["'vf_coef'", "GPG has no value function"]),
        ({**BASE_ENTRY, "clip_range_vf": 0.2}, ["'clip_range_vf'", "GPG has no value function"]),
        ({**BASE_ENTRY, "binnig": "time"}, ["Unknown key 'binnig'", "Did you mean 'binning'?", "bin_size", "collection"]),
        ({**BASE_ENTRY, "binning": "tme"}, ["binning='tme'", "Did you mean 'time'?", "space_time"]),
        ({**BASE_ENTRY, "collection": "episode"}, ["collection='episode'", "Did you mean 'episodes'?", "window"]),
        ({**BASE_ENTRY, "binning": "state"}, ["binning='state'", "does not fit the observation space", "Box", "space_time"]),
        ({**BASE_ENTRY, "binning": "space", "bin_size": [0.5, 0.5]}, ["bin_size=[0.5, 0.5]", "4 dimensions"]),
        ({**BASE_ENTRY, "policy_kwargs": "dict(net_arch=dict(pi=[64], vf=[64]))"}, ["policy_kwargs", "value network"]),
    ],
)
def test_bad_entry_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: dict, expected: list[str]
) -> None:
    config = write_config(tmp_path / "bad.yml", entry)
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path / "logs"), "-conf", config, *TINY]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("sb3-gpg train: error:")
    for text in [config, "'CartPole-v1' entry", *expected]:
        assert text in error, error
    assert not (tmp_path / "logs").exists()  # nothing was built


def test_binning_for_a_discrete_observation_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "cliff.yml", {**BASE_ENTRY, "binning": "space_time"}, env_id="default")
    args = ["train", "--algo", "gpg", "--env", "CliffWalking-v1", "-f", str(tmp_path / "logs"), "-conf", config, *TINY]
    assert main(args) == 2
    error = capsys.readouterr().err
    for text in ["binning='space_time'", "'default' entry", config, "Discrete(48)", "time, none, state"]:
        assert text in error, error


def test_critic_key_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path), "-params", "vf_coef:0.5", *TINY]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "'vf_coef'" in error and "-params" in error and "GPG has no value function" in error


def test_unknown_env_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--algo", "gpg", "--env", "CartPol-v1", "-f", str(tmp_path), *TINY]) == 2
    error = capsys.readouterr().err
    assert "Unknown environment id 'CartPol-v1'" in error and "CartPole-v1" in error and "--gym-packages" in error
    assert main(["enjoy", "--algo", "gpg", "--env", "LunarLandr-v3", "-f", str(tmp_path), "--no-render"]) == 2
    assert "LunarLander-v3" in capsys.readouterr().err


def test_the_packaged_entries_pass_the_checks() -> None:
    config = str(zoo.default_config_path())
    entries = zoo.load_config(config)
    assert {"default", "CartPole-v1", "CliffWalking-v1", "LunarLander-v3", "HalfCheetah-v5"} <= set(entries)
    for name, entry in entries.items():
        assert {"binning", "bin_size", "collection"} <= set(entry), name
        zoo.check_hyperparameters(entry, config, name)
    discrete, box = spaces.Discrete(48), spaces.Box(-1, 1, (8,))
    zoo.check_hyperparameters(entries["CliffWalking-v1"], config, "CliffWalking-v1", observation_space=discrete)
    zoo.check_hyperparameters(entries["default"], config, "default", observation_space=discrete)
    zoo.check_hyperparameters(entries["default"], config, "default", observation_space=box)


# ----------------------------------------------------------------------------------------------------------
# The YAML from an installed (non-editable) package


@pytest.mark.slow
def test_yaml_found_in_an_installed_wheel(tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheel_dir.glob("sb3_gpg-*.whl")
    assert "sb3_gpg/hyperparams/gpg.yml" in zipfile.ZipFile(wheel).namelist()
    install = subprocess.run(
        [*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr

    # The installed copy only: the checkout is off sys.path, and the working directory is elsewhere.
    env = {**SUBPROCESS_ENV, "PYTHONPATH": str(target)}
    code = (
        "from importlib.resources import files; import sb3_gpg.zoo as z;"
        "print(files('sb3_gpg.hyperparams').joinpath('gpg.yml').is_file(), z.default_config_path())"
    )
    found = run_module("-c", code, cwd=tmp_path, env=env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["True", str(target / "sb3_gpg" / "hyperparams" / "gpg.yml")]

    args = ["-m", "sb3_gpg", "train", "--algo", "gpg", "--env", "CartPole-v1", "-f", "logs", *TINY]
    train = run_module(*args, cwd=tmp_path, env=env)
    assert train.returncode == 0, train.stderr[-3000:]
    assert f"Loading hyperparameters from: {target / 'sb3_gpg' / 'hyperparams' / 'gpg.yml'}" in train.stdout


# ----------------------------------------------------------------------------------------------------------
# Hyperparameter search


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
    }
    token = zoo._search_space.set(zoo.SearchSpace.for_experiment(spaces.Box(-1, 1, (4,)), n_timesteps=10**5))
    try:
        sampled = zoo.sample_gpg_params(optuna.trial.FixedTrial(params), 0, 8, {})
    finally:
        zoo._search_space.reset(token)
    assert sampled["batch_size"] == 128 and sampled["n_steps"] == 64 and sampled["gamma"] == pytest.approx(0.99)
    assert "n_envs" not in sampled
    model = GPG("MlpPolicy", make_vec_env("CartPole-v1", n_envs=8), n_steps=sampled.pop("n_steps"), **sampled, device="cpu")
    assert model.binning == "space_time" and model.bin_size == 0.5
    assert zoo.convert_gpg_params(params)["n_envs"] == 8
    with pytest.raises(ValueError, match="no n_envs"):
        zoo.convert_gpg_params({k: v for k, v in params.items() if k != "n_envs"})


@pytest.mark.slow
@pytest.mark.parametrize("storage_kind", ["journal", "sqlite"])
def test_optimize_with_two_workers_sharing_one_study(tmp_path: Path, storage_kind: str) -> None:
    if storage_kind == "sqlite" and importlib.util.find_spec("sqlalchemy") is None:
        pytest.skip("SQLite storage needs sqlalchemy")
    # A path ending in .log is a JournalFileBackend in the Zoo; anything else is an RDB URL for Optuna.
    storage = str(tmp_path / "study.log") if storage_kind == "journal" else f"sqlite:///{tmp_path / 'study.db'}"
    args = ["-m", "sb3_gpg", "train", "--algo", "gpg", "--env", "CartPole-v1", "-optimize", "--n-trials", "2"]
    args += ["--n-timesteps", "2000", "--storage", storage, "--study-name", "s", "--n-jobs", "1", "--sampler", "random"]
    args += ["--pruner", "none", "--n-evaluations", "1", "--eval-episodes", "2", "--num-threads", "1", "--no-optim-plots"]
    if storage_kind == "sqlite":  # both workers would race to create the SQLite schema: create it first
        optuna.create_study(storage=storage, study_name="s", direction="maximize")
    workers = [
        subprocess.Popen(
            [sys.executable, *args, "--seed", str(seed), "-f", f"logs{seed}"],
            cwd=tmp_path,
            env=SUBPROCESS_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # The seeds seed the random sampler: these two draw cheap trials (few epochs and minibatches), which
        # keeps the test quick; with others it is slower, not wrong.
        for seed in (5, 7)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]

    if storage_kind == "journal":
        journal = optuna.storages.journal.JournalFileBackend(storage)
        study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(journal))
    else:
        study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials()
    assert len(trials) == 4
    assert len({trial.user_attrs["worker"] for trial in trials}) == 2  # host:pid of each worker
    assert {worker.pid for worker in workers} == {int(t.user_attrs["worker"].rsplit(":", 1)[1]) for t in trials}
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert {"n_envs", "n_steps_pow", "learning_rate", "binning"} <= set(trial.params)
        assert trial.params["n_envs"] * 2 ** trial.params["n_steps_pow"] <= 2000
