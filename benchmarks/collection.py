"""Window against complete-episode collection on CartPole-v1, several seeds, same budget.

With the window (SB3's ``n_steps`` per env), an episode still running when the rollout ends gets a truncated
return, and once a good policy's episodes outlast the window every return of a late time bin is cut at a
different point. Complete-episode groups (``collection="episodes"``) have no truncated return.

    python -m benchmarks.collection --seeds 0 1 2 3 --timesteps 80000
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

from benchmarks.report import RESULTS, markdown_table


def run(collection: str, n_envs: int, n_steps: int, seed: int, timesteps: int) -> tuple[float, float, float]:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_gpg import GPG

    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    model = GPG(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        batch_size=n_envs * n_steps // 4,
        n_epochs=4,
        learning_rate=2.5e-3,
        collection=collection,
        seed=seed,
    )
    start = time.perf_counter()
    model.learn(timesteps)
    seconds = time.perf_counter() - start
    mean, std = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=100 + seed), n_eval_episodes=20)
    return float(mean), float(std), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3], help="training seeds")
    parser.add_argument("--timesteps", type=int, default=80_000, help="env steps per run")
    parser.add_argument("--settings", nargs="+", default=["8x128", "16x64"], help="envs x steps per rollout")
    parser.add_argument("--out", type=Path, default=RESULTS / "collection", help="output folder")
    args = parser.parse_args()
    th.set_num_threads(1)

    rows = []
    for setting in args.settings:
        n_envs, n_steps = map(int, setting.split("x"))
        for collection in ("window", "episodes"):
            scores = []
            for seed in args.seeds:
                mean, std, seconds = run(collection, n_envs, n_steps, seed, args.timesteps)
                scores.append(mean)
                print(f"{setting} {collection} seed {seed}: {mean:.1f} +/- {std:.1f} ({seconds:.0f} s)", flush=True)
            solved = sum(score >= 475 for score in scores)
            scores_text = " / ".join(f"{s:.0f}" for s in scores)
            rows.append([n_envs, n_steps, collection, scores_text, f"{np.mean(scores):.1f}", f"{solved}/{len(scores)}"])
    command = shlex.join(["python", "-m", "benchmarks.collection", *sys.argv[1:]])
    header = ["envs", "steps per rollout", "collection", "evaluation per seed", "mean", "solved (>= 475)"]
    table = markdown_table(header, rows).rstrip("\n")
    text = (
        f"### Window vs complete-episode collection, CartPole-v1\n\n`{command}`\n\n{args.timesteps:,} env steps per "
        "run, learning rate 2.5e-3, 4 epochs, 4 minibatches, time binning; evaluation: 20 deterministic episodes "
        f"on a separately seeded env.\n\n{table}\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cartpole.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
