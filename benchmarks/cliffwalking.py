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
    " Do not chase it: the -17 does not come from the paper's own code base either. CleanRL's `ppo.py` (the paper's"
    " starting point, commit fe8d8a03), run as CleanRL runs it (no time limit, the raw state index as observation,"
    " 200 iterations) under gymnasium 0.29.1 and 1.4, almost never reaches the goal with PPO or GPG at 1, 4, 16, 32"
    " or 128 envs, and with a 200-step limit both end at -200, as here (measured by the maintainers with CleanRL's"
    " script, reported in issue 12; no script here re-runs CleanRL). The reason is exploration: {walk}. Two suspects"
    " on our side, the benchmark's 200-step time limit and SB3's one-hot observation, were checked by"
    " `benchmarks/cliffwalking.py`; neither changes it: with either encoding and a limit of 200, 1,000 or 10,000"
    " steps GPG never reaches the goal in 200 iterations at 4 envs."
)


def random_walk() -> tuple[float, float]:
    """Expected steps to the goal, and expected undiscounted return, of the uniform random policy from the start
    state of CliffWalking-v1, solved exactly from the env's own transition table (``env.unwrapped.P``): the
    cliff sends the walker back to the start without ending the episode, so the goal is the only way out."""
    env = gym.make("CliffWalking-v1").unwrapped
    n_states, n_actions = env.observation_space.n, env.action_space.n
    start = int(np.argmax(env.initial_state_distrib))
    # h = 1 + P_random h and v = r_random + P_random v on the non-terminal states, 0 at the terminal ones.
    transitions, rewards, terminal = np.zeros((n_states, n_states)), np.zeros(n_states), np.zeros(n_states, bool)
    for state in range(n_states):
        for action in range(n_actions):
            for probability, successor, reward, done in env.P[state][action]:
                weight = probability / n_actions
                rewards[state] += weight * reward
                if done:
                    terminal[successor] = True
                transitions[state, successor] += weight
    transitions[terminal] = 0.0
    system = np.eye(n_states) - transitions
    steps = np.linalg.solve(system, np.where(terminal, 0.0, 1.0))
    returns = np.linalg.solve(system, np.where(terminal, 0.0, rewards))
    return float(steps[start]), float(returns[start])


def walk_text() -> str:
    steps, total = random_walk()
    return (
        f"a uniform random walk from the start needs {steps:,.0f} steps on average to find the goal (expected "
        f"return {total:,.0f}), solved exactly from the env's transition table by `random_walk()` in that script,"
        " about 32 times the 200-step limit"
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
        intro = INTRO_TEXT.format(walk=walk_text())
        replace_section(args.results_md, "CliffWalking check", f"{intro}\n\n{text}", after="Learning benchmark")
    print(text)


if __name__ == "__main__":
    main()
