"""Why CliffWalking-v1 does not learn in the learning benchmark: a check of two suspects.

The paper reports -17 (the safe path) for GPG and PPO from 4 envs on; in the learning benchmark both stay at
-200, the 200-step ``TimeLimit`` the harness adds (``harness.CLIFF_TIME_LIMIT``). Two differences from the paper's
source (CleanRL's ``ppo.py``) could explain it:

- the time limit: CliffWalking-v1 has none by default, and a truncated episode carries no signal towards the
  goal (every path that avoids the cliff scores -1 per step);
- the observation: SB3 one-hot encodes a ``Discrete`` observation, CleanRL feeds the raw state index as one float.

This script trains GPG with the learning benchmark's CliffWalking settings (``harness.TASKS``, reduced profile:
200 iterations of 128 steps per env) at 4 envs, seed 0, for each combination of time limit and observation
encoding, and reports the deterministic evaluation (capped at the same limit) and the training episodes.

Usage (from the repository root)::

    python -m benchmarks.cliffwalking --limits 200 1000 10000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from benchmarks.harness import TASKS, RunSpec, run_one
from benchmarks.report import RESULTS, machine, markdown_table, replace_section

INTRO_TEXT = (
    "CliffWalking-v1 stays at the time limit for GPG and PPO in the learning benchmark, where the paper reports -17."
    " Two suspects, the benchmark's 200-step time limit and SB3's one-hot observation (CleanRL feeds the raw state"
    " index), were checked by `benchmarks/cliffwalking.py`; neither explains it: with either encoding and a limit"
    " of 200, 1,000 or 10,000 steps GPG never reaches the goal in 200 iterations at 4 envs."
)


class StateIndex(gym.ObservationWrapper):
    """A ``Discrete`` observation as CleanRL's ``ppo.py`` feeds it: the state index as a single float."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, env.observation_space.n - 1, (1,), np.float32)

    def observation(self, observation: int) -> np.ndarray:
        return np.array([observation], dtype=np.float32)


def run(limit: int, encoding: str, n_envs: int, seed: int) -> dict:
    """One GPG run of the harness with CliffWalking's time limit and observation encoding replaced."""
    wrappers = (StateIndex,) if encoding == "state index" else ()
    task = dataclasses.replace(TASKS["cliffwalking"], time_limit=limit, wrappers=wrappers)
    return run_one(RunSpec("cliffwalking", "gpg", n_envs, seed, "reduced"), task=task)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", type=int, nargs="+", default=[200, 1000, 10000], help="time limits to try")
    parser.add_argument("--envs", type=int, default=4, help="parallel envs (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results root (default benchmarks/results)")
    parser.add_argument("--results-md", type=Path, default=RESULTS.parent / "RESULTS.md",
                        help="markdown file whose 'CliffWalking check' section is rewritten")  # fmt: skip
    args = parser.parse_args(argv)
    rows = []
    for limit in args.limits:
        for encoding in ("one-hot (SB3)", "state index"):
            record = run(limit, encoding, args.envs, args.seed)
            episodes = sum(record["curve"]["episodes"])
            last = [r for r in record["curve"]["ep_return"] if r is not None][-1:] or ["-"]
            goal = "yes" if min(record["eval"]["lengths"]) < limit else "no"
            rows.append([limit, encoding, f"{np.mean(record['eval']['returns']):.0f}", goal, episodes,
                         last[0] if last[0] == "-" else f"{last[0]:.0f}"])  # fmt: skip
            print(rows[-1], flush=True)
    table = markdown_table(
        ["time limit", "observation", "eval return (5 episodes)", "eval reaches goal", "training episodes",
         "last training return"], rows)  # fmt: skip
    command = shlex.join(["python", "-m", "benchmarks.cliffwalking", *(sys.argv[1:] if argv is None else argv)])
    text = f"""Command: `{command}`
Machine: {machine()}, one torch thread.
GPG, CliffWalking-v1, {args.envs} envs, seed {args.seed}, the learning benchmark's settings (reduced profile).

{table}"""
    out = args.out / "cliffwalking.md"
    out.write_text(text)
    if args.results_md:
        replace_section(args.results_md, "CliffWalking check", f"{INTRO_TEXT}\n\n{text}", after="Learning benchmark")
    print(text)


if __name__ == "__main__":
    main()
