"""The benchmark harness keeps its result files trustworthy: a broken file is named and its run done again, a smoke
report never replaces a published section, a killed sweep leaves no worker behind, and a locked run is not run twice.

The suites are driven through their command line in a subprocess (``python -m benchmarks.<suite>``), the smoke
profile keeping each run to a second or two.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.harness import RunSpec
from benchmarks.sweep import BrokenResult, Run, read_result

REPOSITORY = Path(__file__).resolve().parents[1]
SMOKE_RUN = ["--profile", "smoke", "--tasks", "cartpole", "--algos", "gpg", "--envs", "1", "--seeds", "0"]
SMOKE_FILE = Path("learning/smoke/cartpole/gpg_n1_s0.json")  # the result file of SMOKE_RUN


def suite(name: str, *arguments: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *arguments],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300, **kwargs,
    )  # fmt: skip


def published_record() -> tuple[Run, dict]:
    """A finished run of the published reduced-profile results and its record."""
    run = Run(RunSpec("cartpole", "gpg", 1, 0, "reduced"), "learning/reduced/cartpole/gpg_n1_s0.json")
    return run, json.loads(run.path(REPOSITORY / "benchmarks" / "results").read_text())


@pytest.mark.parametrize(
    "content, reason",
    [
        ("", "not valid JSON (empty file)"),
        ('{"spec": {"task": "cartpole", "algo"', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("nan-return", "not all finite"),
        ("other-run", "holds the run"),
        ("no-eval", "no 'eval'"),
        ("short-curve", "iterations"),
    ],
)
def test_a_broken_result_file_is_named_with_its_fault(tmp_path, content, reason):
    run, record = published_record()
    if content == "nan-return":
        record["eval"]["returns"][2] = math.nan
    elif content == "other-run":
        record["spec"]["seed"] = 1
    elif content == "no-eval":
        del record["eval"]
    elif content == "short-curve":
        record["curve"]["timesteps"].pop()
    path = run.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record) if content in ("nan-return", "other-run", "no-eval", "short-curve") else content)
    with pytest.raises(BrokenResult, match=re.escape(reason)) as error:
        read_result(run, tmp_path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("name", ["learning", "ablation", "variants", "groupsize"])
def test_published_result_files_all_load(name):
    # Records written before run specs carried GPG options and iterations (variants, groupsize) load as they are.
    result = suite(name, "plan", "--profile", "reduced")
    assert result.returncode == 0, result.stderr
    assert "broken" not in result.stdout, result.stdout
    assert "warning" not in result.stderr, result.stderr


def test_a_truncated_result_file_is_set_aside_and_run_again(tmp_path):
    path = tmp_path / SMOKE_FILE
    path.parent.mkdir(parents=True)
    path.write_text('{"spec": {"task": "cartpole", "algo": "gpg", "n_e')  # a write cut short
    result = suite("learning", "run", *SMOKE_RUN, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stderr
    record = json.loads(path.read_text())
    assert len(record["eval"]["returns"]) == 2  # the smoke profile's evaluation episodes
    assert path.with_name(path.name + ".broken").read_text().startswith('{"spec": {"task": "cartpole"')


def test_a_report_names_a_broken_result_file(tmp_path):
    path = tmp_path / "results" / SMOKE_FILE
    path.parent.mkdir(parents=True)
    path.write_text("")
    result = suite("learning", "report", "--profile", "smoke", "--tasks", "cartpole", "--out", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stderr
    assert "pending (0/1 runs)" in (tmp_path / "results" / "learning" / "smoke" / "learning.md").read_text()


def test_a_smoke_report_leaves_results_md_untouched(tmp_path):
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmark results\n\n## Learning benchmark\n\nthe published reduced-profile section\n")
    before = results_md.read_bytes()
    result = suite("learning", "report", "--profile", "smoke", "--tasks", "cartpole", "--out", str(tmp_path / "results"),
                   "--results-md", str(results_md))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert results_md.read_bytes() == before
    assert "Profile `smoke`" in (tmp_path / "results" / "learning" / "smoke" / "learning.md").read_text()


def test_a_locked_run_is_left_to_the_sweep_that_holds_it(tmp_path):
    lock = tmp_path / SMOKE_FILE.with_name(SMOKE_FILE.name + ".lock")
    lock.parent.mkdir(parents=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a sweep that is running this run holds it
        result = suite("learning", "run", *SMOKE_RUN, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "another sweep is running it" in result.stdout + result.stderr
    assert not (tmp_path / SMOKE_FILE).exists()


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the sweep's worker through /proc")
def test_killing_a_sweep_ends_its_worker(tmp_path):
    # A reduced-profile run trains for several seconds: long enough to kill its sweep while it trains.
    log = (tmp_path / "sweep.log").open("w")
    arguments = ["--profile", "reduced", "--tasks", "cartpole", "--algos", "gpg", "--envs", "1", "--seeds", "0"]
    sweep = subprocess.Popen([sys.executable, "-m", "benchmarks.learning", "run", *arguments, "--out", str(tmp_path)],
                             cwd=REPOSITORY, stdout=log, stderr=log)  # fmt: skip
    result = tmp_path / "learning" / "reduced" / "cartpole" / "gpg_n1_s0.json"
    workers: list[int] = []
    try:
        # The run's progress bar shows once its model is built and training starts.
        assert _wait(lambda: "cartpole/gpg/default/n1/s0" in (tmp_path / "sweep.log").read_text(), 120)
        workers = [pid for pid in _children(sweep.pid) if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 1, workers
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait()
        assert _wait(lambda: not _alive(workers[0]), 120), "the worker outlived its sweep"
        assert not result.exists()
    finally:
        sweep.kill()
        log.close()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_paper_profile_plans_only_its_own_tasks_and_refuses_others_by_name(tmp_path):
    result = suite("learning", "plan", "--profile", "paper", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    planned = re.findall(r"^  learning/paper/(\w+)/(\w+)_n(\d+)_s\d$", result.stdout, flags=re.M)
    assert {(task, int(n)) for task, _, n in planned} == {
        ("lunarlander", 64), ("lunarlander", 128), ("halfcheetah", 16), ("halfcheetah", 32)
    }  # fmt: skip
    assert len(planned) == 4 * 2 * 4  # 4 cells x GPG and PPO x 4 seeds
    refused = suite("learning", "plan", "--profile", "paper", "--tasks", "cartpole", "--out", str(tmp_path))
    assert refused.returncode != 0
    assert "profile 'paper' does not run cartpole: its tasks are lunarlander, halfcheetah" in refused.stderr


def test_the_envpool_backend_refuses_a_task_that_wraps_its_env():
    from benchmarks.harness import TASKS, make_env

    with pytest.raises(ValueError, match="CliffWalking-v1 wraps its env"):
        make_env(TASKS["cliffwalking"], 2, 0, backend="envpool")
    with pytest.raises(ValueError, match="valid backends are 'dummy', 'envpool'"):
        make_env(TASKS["cartpole"], 2, 0, backend="subproc")


def write_paper_protocol_run(root: Path) -> None:
    """One finished paper-protocol run: GPG (time bins) on LunarLander at 128 envs, seed 0."""
    spec = RunSpec("lunarlander", "gpg", 128, 0, "paper")
    returns = [250.0, 260.0, 270.0, 240.0, 230.0]
    record = dict(
        spec=spec.to_json(), eval=dict(returns=returns, lengths=[300] * 5), iterations=200, env_steps=200 * 128 * 1024,
        curve=dict(timesteps=list(range(200)), ep_return=[0.0] * 200), steps_per_second=30_000.0,
    )  # fmt: skip
    path = root / spec.result_file
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))


def test_the_reduced_report_adds_the_paper_protocol_cells(tmp_path):
    write_paper_protocol_run(tmp_path / "results")
    result = suite("learning", "report", "--profile", "reduced", "--tasks", "lunarlander", "--out",
                   str(tmp_path / "results"), "--results-md", str(tmp_path / "RESULTS.md"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| paper protocol | 128 | GPG |")]
    assert len(rows) == 1 and "250.0 ± 14.1" in rows[0] and "pending (1/4 runs)" in rows[0], rows
    assert "| paper protocol | 64 | PPO | pending (0/4 runs) |" in result.stdout
    assert re.search(r"1 of 16 runs\s+finished", result.stdout)  # LunarLander: 2 env counts x 2 algorithms x 4 seeds


def test_the_reduced_ablation_report_adds_the_paper_protocol_column(tmp_path):
    # The paper profile's time-binned GPG run is the learning benchmark's file, shared with the ablation's time row.
    write_paper_protocol_run(tmp_path / "results")
    result = suite("ablation", "report", "--profile", "reduced", "--envs", "4", "--out", str(tmp_path / "results"),
                   "--results-md", str(tmp_path / "RESULTS.md"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| binning | 4 envs | 128 envs, paper protocol |" in result.stdout
    assert "| time | pending (0/2 runs) | 250.0 ± 14.1 (250.0 [" in result.stdout
    assert "| space-time ε=0.2 | pending (0/2 runs) | pending (0/4 runs) |" in result.stdout
    assert "| universal | pending (0/2 runs) | - |" in result.stdout  # not in the paper protocol's configurations
    assert re.search(r"0 of 2 runs\s+finished", result.stdout) is None  # the time row's runs are counted per column
    assert re.search(r"1 of 12 runs\s+finished", result.stdout)  # 3 configurations x 4 seeds at 128 envs


def test_zoo_suite_options_read_values_as_yaml_and_exponents_as_floats():
    from benchmarks.zoo_runs import parse_variants

    [options] = parse_variants([["learning_rate=1e-4", "n_envs=16", "collection=carry", "normalize=true", "gamma=0.99"]])
    assert dict(options) == dict(learning_rate=1e-4, n_envs=16, collection="carry", normalize=True, gamma=0.99)
    assert type(dict(options)["n_envs"]) is int
    assert dict(parse_variants([["learning_rate=lin_3e-4"]])[0]) == {"learning_rate": "lin_3e-4"}


def test_a_zoo_suite_variant_may_set_a_mapping_such_as_a_wrapper_with_its_arguments(tmp_path):
    wrapper = "vec_env_wrapper={sb3_gpg.exploration.VecCountBonus: {beta: 0.3, cells: 32}}"
    run = ["--profile", "smoke", "--tasks", "mountaincar", "--algos", "gpg", "--options", wrapper, "--out", str(tmp_path)]
    result = suite("zoo_suite", "run", *run)
    assert result.returncode == 0, result.stderr
    [path] = (tmp_path / "zoo_suite" / "smoke" / "mountaincar").glob("*.json")
    assert path.name == f"gpg+{wrapper}_s0.json"
    record = json.loads(path.read_text())
    bonus = {"sb3_gpg.exploration.VecCountBonus": {"beta": 0.3, "cells": 32}}
    assert record["hyperparameters"]["vec_env_wrapper"] == record["spec"]["options"][0][1] == bonus
    assert len(record["eval"]["returns"]) == 2
    result = suite("zoo_suite", "plan", *run)  # the record is read back as the run it is: nothing left to do
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 runs, 1 done, 0 to run") and "broken" not in result.stderr


def test_ppo_variants_take_zoo_keys_and_are_never_judged_against_ppo(tmp_path):
    wrapper = "vec_env_wrapper={sb3_gpg.exploration.VecCountBonus: {beta: 0.3, cells: 32}}"
    common = ["--profile", "smoke", "--tasks", "mountaincar", "--out", str(tmp_path)]
    result = suite("zoo_suite", "run", *common, "--algos", "ppo", "--ppo-options", "binning=time")
    assert result.returncode != 0 and "PPO runs take Zoo keys only, not GPG's ['binning']" in result.stderr
    result = suite("zoo_suite", "run", *common, "--algos", "ppo", "gpg", "--ppo-options", "--ppo-options", wrapper)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "zoo_suite" / "smoke" / "mountaincar"
    assert sorted(path.name for path in folder.glob("*.json")) == ["gpg_s0.json", f"ppo+{wrapper}_s0.json", "ppo_s0.json"]
    record = json.loads((folder / f"ppo+{wrapper}_s0.json").read_text())
    assert record["hyperparameters"]["vec_env_wrapper"] == {"sb3_gpg.exploration.VecCountBonus": {"beta": 0.3, "cells": 32}}
    result = suite("zoo_suite", "report", *common, "--algos", "ppo", "gpg", "--ppo-options", "--ppo-options", wrapper)
    assert result.returncode == 0, result.stderr
    assert f"| MountainCar-v0 | ppo+{wrapper} |" in result.stdout
    assert "| MountainCar-v0 | gpg | too few seeds for a verdict |" in result.stdout
    assert f"| ppo+{wrapper} | too few" not in result.stdout  # PPO's variants are not GPG variants to judge


def test_the_zoo_suite_trains_each_algorithm_with_its_own_entry():
    from benchmarks.zoo_runs import CRITIC_KEYS, ZooRunSpec, entry_hyperparameters, zoo_ppo_entries
    from sb3_gpg import zoo

    ours = zoo.load_config(str(zoo.default_config_path()))
    default = entry_hyperparameters(ZooRunSpec("pendulum", "gpg-default", 0, "zoo"))
    assert default == ours["default"] != ours["Pendulum-v1"]
    assert entry_hyperparameters(ZooRunSpec("pendulum", "gpg", 0, "zoo")) == ours["Pendulum-v1"]
    candidate = entry_hyperparameters(ZooRunSpec("acrobot", "gpg-default", 0, "zoo", (("n_envs", 16),)))
    assert candidate == {**ours["default"], "n_envs": 16}
    ppo_entry = zoo_ppo_entries()["Acrobot-v1"]
    minus_critic = entry_hyperparameters(ZooRunSpec("acrobot", "gpg-ppo-entry", 0, "zoo"))
    assert "gae_lambda" in ppo_entry and not set(CRITIC_KEYS) & set(minus_critic)
    assert minus_critic == {key: value for key, value in ppo_entry.items() if key not in CRITIC_KEYS}


@dataclasses.dataclass(frozen=True)
class ToySpec:
    """A run that takes no time: its record is ``{"n": n}``; run 2 kills its own worker."""

    n: int

    def check_record(self, record: dict) -> None:
        if record.get("n") != self.n:
            raise ValueError(f"it holds {record}, not run {self.n}")


def toy_runner(spec: ToySpec, position: int) -> dict:
    if spec.n == 2:
        os._exit(3)  # a worker killed mid-run (out of memory, a signal): no outcome comes back
    return {"n": spec.n, "position": position}


def test_a_sweep_ends_after_its_last_run_and_counts_a_dead_worker_as_failed(tmp_path):
    from benchmarks.sweep import run_sweep

    runs = [Run(ToySpec(n), f"toy/run{n}.json") for n in range(6)]
    start = time.monotonic()
    assert run_sweep(runs, toy_runner, tmp_path, workers=2) == 1
    assert time.monotonic() - start < 120
    records = {n: json.loads((tmp_path / f"toy/run{n}.json").read_text()) for n in range(6) if n != 2}
    assert {n: record["n"] for n, record in records.items()} == {0: 0, 1: 1, 3: 3, 4: 4, 5: 5}
    assert {record["position"] for record in records.values()} == {1, 2}  # two progress lines, one per worker
    assert not (tmp_path / "toy/run2.json").exists()
    assert run_sweep(runs, toy_runner, tmp_path, workers=2) == 1  # resumed: only the failed run again
