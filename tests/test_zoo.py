"""The RL Zoo integration end to end: the ``sb3-gpg`` command line, gpg.yml, checks and distributed tuning.

Budgets are tiny (a few thousand CartPole steps): these tests check the plumbing, not learning.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import gymnasium as gym
import pytest
import yaml
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_gpg import GPG, zoo
from sb3_gpg.cli import main
from sb3_gpg.vec_env import GymnasiumVecEnv

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
    error = capsys.readouterr().err
    assert "--vec-env jax: Unknown backend='jax': valid backends are dummy, subproc, gymnasium, envpool." in error


class GatedCartPole(CartPoleEnv):
    """CartPole whose first instance, once ``gate`` is armed, waits in its constructor until ``gate.release`` is set."""

    gate: ClassVar[SimpleNamespace | None] = None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        gate, GatedCartPole.gate = GatedCartPole.gate, None
        if gate is not None:
            gate.inside.set()
            assert gate.release.wait(timeout=60)


def test_threads_build_envs_with_their_own_backends(tmp_path: Path) -> None:
    """``-optimize --n-jobs 2`` runs trials in threads: while one thread builds a batched env, another thread's
    manager still builds its own backend's env (the Zoo's module-level make_vec_env is not swapped per call)."""
    gym.register("GatedCartPole-v0", entry_point=GatedCartPole, max_episode_steps=500)
    GatedCartPole.gate = gate = SimpleNamespace(inside=threading.Event(), release=threading.Event())
    batched = zoo.GPGExperimentManager(
        argparse.Namespace(), "gpg", "GatedCartPole-v0", str(tmp_path), vec_env_backend="gymnasium"
    )
    dummy = zoo.GPGExperimentManager(argparse.Namespace(), "gpg", "CartPole-v1", str(tmp_path), vec_env_backend="dummy")
    envs: dict[str, VecEnv] = {}
    thread = threading.Thread(target=lambda: envs.setdefault("batched", batched.create_envs(2, no_log=True)))
    try:
        thread.start()
        assert gate.inside.wait(timeout=60)  # the other thread is inside create_envs, building its batched env
        envs["dummy"] = dummy.create_envs(3, no_log=True)
    finally:
        gate.release.set()
        thread.join(timeout=60)
        gym.envs.registry.pop("GatedCartPole-v0")
    try:
        assert isinstance(envs["dummy"], DummyVecEnv) and envs["dummy"].num_envs == 3
        assert [env.spec.id for env in envs["dummy"].envs] == ["CartPole-v1"] * 3
        assert isinstance(envs["batched"], GymnasiumVecEnv) and envs["batched"].num_envs == 2
        assert envs["batched"].venv.spec.id == "GatedCartPole-v0"
    finally:
        for env in envs.values():
            env.close()


def test_conf_file_wins_over_the_packaged_config(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mine.yml", {**BASE_ENTRY, "binning": "none", "collection": "episodes"})
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path), "--conf-file", config, *TINY]
    assert main(args) == 0
    model = GPG.load(tmp_path / "gpg" / "CartPole-v1_1" / "CartPole-v1.zip", device="cpu")
    assert (model.binning, model.collection, model.n_envs) == ("none", "episodes", 2)


# ----------------------------------------------------------------------------------------------------------
# Bad input stops before training, with the key, the file and what is valid


def train_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, env_id: str = "CartPole-v1") -> str:
    """``sb3-gpg train`` with ``config``: it must stop with exit status 2 before building anything; its message."""
    logs = tmp_path / "logs"
    assert main(["train", "--algo", "gpg", "--env", env_id, "-f", str(logs), "--conf-file", config, *TINY]) == 2
    assert not logs.exists()  # no log folder: nothing was built
    error = capsys.readouterr().err
    assert error.startswith("sb3-gpg train: error: "), error
    return error


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("gae_lambda", 0.95, ["gae_lambda configures a critic", "GPG has no value function", "clip_range_vf"]),
        ("vf_coef", 0.5, ["vf_coef configures a critic", "GPG has no value function"]),
        ("clip_range_vf", 0.2, ["clip_range_vf configures a critic"]),
        ("binnig", "time", ["Unknown key 'binnig'", "Did you mean 'binning'?", "bin_size", "collection"]),
        ("binning", "tme", ["Unknown binning='tme'", "time, none, space, space_time, state"]),
        ("collection", "episode", ["Unknown collection='episode'", "'window', 'episodes'"]),
        ("binning", "state", ["binning='state'", "needs a discrete observation space", "Box", "space_time"]),
        ("bin_size", [0.5, 0.5], ["bin_size=[0.5, 0.5]", "4 dimensions"]),
        ("policy_kwargs", "dict(net_arch=dict(pi=[64], vf=[64]))", ["value network", "net_arch=[64]"]),
        # A wrapper that refuses its arguments (CartPole's velocities have no bounds for the bonus's grid)
        ("vec_env_wrapper", "sb3_gpg.exploration.VecCountBonus", ["low=[", "must be finite: give `low` and `high`"]),
        ("vec_env_wrapper", {"sb3_gpg.exploration.VecCountBonus": {"bta": 1}}, ["unexpected keyword argument 'bta'"]),
    ],
)
def test_bad_entry_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: object, expected: list[str]
) -> None:
    entry = {**BASE_ENTRY, "binning": "space", key: value} if key == "bin_size" else {**BASE_ENTRY, key: value}
    config = write_config(tmp_path / "bad.yml", entry)
    error = train_refused(tmp_path, capsys, config)
    for text in [f"Key {key!r} of entry 'CartPole-v1' in {config}: ", *expected]:
        assert text in error, error


@pytest.mark.parametrize(
    "key, value, expected",
    [
        # The Zoo's own keys
        ("n_envs", "four", ["n_envs='four' must be an integer >= 1"]),
        ("n_envs", 0, ["n_envs=0 must be an integer >= 1"]),
        ("n_envs", "8", ["n_envs='8' must be an integer", "write 8 without quotes"]),
        ("n_timesteps", "1e5", ["n_timesteps='1e5' must be a number of env steps > 0", "!!float 1e5"]),
        ("frame_stack", 2.5, ["frame_stack=2.5 must be an integer >= 1"]),
        ("normalize", "maybe", ["normalize='maybe' is a string the Zoo evaluates as Python", "NameError"]),
        ("normalize", [1], ["normalize=[1] must be true, false, or a dict"]),
        ("env_kwargs", [1, 2], ["env_kwargs=[1, 2] must be a dict"]),
        ("env_kwargs", "dict(sutton_barto_reward=True)", ["must be a dict"]),  # the Zoo evaluates no env_kwargs string
        ("monitor_kwargs", "dict(info_keywords=('is_success',)", ["is a string the Zoo evaluates as Python"]),
        ("policy", ["MlpPolicy"], ["Unknown policy=['MlpPolicy']"]),
        ("policy", "MlpPolicyy", ["Unknown policy='MlpPolicyy'", "MlpPolicy, CnnPolicy, MultiInputPolicy"]),
        ("env_wrapper", "no_such_module.Wrapper", ["env_wrapper='no_such_module.Wrapper' cannot be loaded", "module.Class"]),
        # Schedule strings
        ("learning_rate", "fast", ["learning_rate='fast' must be a number or the Zoo's linear schedule", "'lin_3e-4'"]),
        ("learning_rate", "3e-4", ["learning_rate='3e-4'", "0.0003 or !!float 3e-4"]),
        ("clip_range", "lin_wide", ["clip_range='lin_wide' must be a number or the Zoo's linear schedule"]),
        # GPG's constructor arguments, checked by the core
        ("n_steps", 32.5, ["n_steps=32.5 must be an integer >= 1"]),
        ("batch_size", "64", ["batch_size='64' must be an integer >= 1", "write 64 without quotes"]),
        ("gamma", 1.5, ["gamma=1.5 must be a number in [0, 1]"]),
        ("normalize_advantage", "false", ["normalize_advantage='false' must be True or False"]),
        ("policy_kwargs", "dict(net_arch=[64, 64]", ["policy_kwargs='dict(net_arch=[64, 64]' is a string", "SyntaxError"]),
    ],
)
def test_wrong_type_in_the_entry_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: object, expected: list[str]
) -> None:
    config = write_config(tmp_path / "bad.yml", {**BASE_ENTRY, key: value})
    error = train_refused(tmp_path, capsys, config)
    for text in [f"Key {key!r} of entry 'CartPole-v1' in {config}: ", *expected]:
        assert text in error, error


def test_missing_policy_or_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "bad.yml", {key: value for key, value in BASE_ENTRY.items() if key != "policy"})
    error = train_refused(tmp_path, capsys, config)
    assert f"Key 'policy' of entry 'CartPole-v1' in {config}: missing: add one, e.g. policy: 'MlpPolicy'." in error
    entry = {key: value for key, value in BASE_ENTRY.items() if key != "n_timesteps"}
    zoo.check_hyperparameters(entry, config, "CartPole-v1", n_timesteps=1000)  # the budget of -n
    with pytest.raises(zoo.ZooConfigError, match=r"Key 'n_timesteps' of entry 'CartPole-v1' in .*: missing: add one"):
        zoo.check_hyperparameters(entry, config, "CartPole-v1")


def test_yaml_number_without_decimal_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The YAML file itself, not a dumped dict: ``learning_rate: 3e-4`` is a string for PyYAML (YAML 1.1)."""
    config = tmp_path / "bad.yml"
    config.write_text("CartPole-v1:\n  policy: MlpPolicy\n  n_timesteps: 2048\n  learning_rate: 3e-4\n")
    error = train_refused(tmp_path, capsys, str(config))
    assert f"Key 'learning_rate' of entry 'CartPole-v1' in {config}: learning_rate='3e-4' must be a number" in error
    assert (
        "('3e-4' is a string: YAML 1.1 reads a number without a decimal point as one; write 0.0003 or !!float 3e-4.)" in error
    )


def test_binning_for_a_discrete_observation_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "cliff.yml", {**BASE_ENTRY, "binning": "space_time"}, env_id="default")
    error = train_refused(tmp_path, capsys, config, env_id="CliffWalking-v1")
    for text in [
        f"Key 'binning' of entry 'default' in {config}: binning='space_time'",
        "Discrete(48)",
        "'time', 'none', 'state'",
    ]:
        assert text in error, error


def test_bad_value_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--algo", "gpg", "--env", "CartPole-v1", "-f", str(tmp_path), *TINY]
    assert main([*args, "-params", "vf_coef:0.5"]) == 2
    error = capsys.readouterr().err
    assert "Key 'vf_coef' set by -params vf_coef:... on the command line: vf_coef configures a critic" in error
    assert main([*args, "-params", "binning:'tme'"]) == 2
    assert "Key 'binning' set by -params binning:... on the command line: Unknown binning='tme'" in capsys.readouterr().err
    # shared_starts must divide the entry's n_envs: said before anything is built, not from inside the Zoo's model.
    shared = ["-params", "collection:'episodes'", "shared_starts:3", "n_envs:4"]
    assert main([*args, *shared]) == 2
    assert "Key 'shared_starts' set by -params shared_starts:... on the command line: shared_starts=3 does not divide " \
        "n_envs=4" in capsys.readouterr().err  # fmt: skip
    # A value the Zoo's parser cannot evaluate as Python (a NameError traceback from inside argparse before).
    assert main([*args, "-params", "n_envs:four"]) == 2
    assert "-params n_envs:four: the Zoo evaluates the value of 'n_envs' as Python" in capsys.readouterr().err


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
        assert {"binning", "collection"} <= set(entry), name
        assert ("bin_size" in entry) == (entry["binning"] in ("space", "space_time")), name  # only where it applies
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
