"""Speed and memory of GPG against SB3's PPO, and how GPG scales to large groups.

Sub-commands (each prints a markdown table and writes it, with the command, under ``--out``):

- ``throughput``: end-to-end env steps per second of GPG and PPO, same task, env count, network and
  hyperparameters. The two alternate in rounds inside one process so that a noisy machine slows both alike;
  the ratio is taken per round.
- ``memory``: policy parameters, optimizer state, rollout buffer bytes and peak resident memory (each
  algorithm in a fresh process).
- ``breakdown``: one iteration split into env stepping, policy forward, advantage estimation, update and the
  rest of the rollout loop.
- ``estimator``: time of the advantage estimator against envs x steps (up to 4096 x 256), with a plot.
- ``rollout``: rollout collection against the backend's raw stepping time (policy inference included) at a
  large env count, for each env backend.
- ``large``: end to end at a large env count: GPG on a batched backend against PPO on ``DummyVecEnv``.

Usage (from the repository root): ``python -m benchmarks.speed <sub-command> [flags]``.

Every sub-command pins torch to one thread (``--threads``): small MLPs run fastest so, and it keeps the
measurement from fighting other processes for cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import shlex
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from benchmarks.harness import ALGOS
from benchmarks.report import RESULTS
from benchmarks.report import machine as machine_name
from benchmarks.report import markdown_table as markdown


def machine() -> str:
    return f"{machine_name()}, torch {th.__version__}, {th.get_num_threads()} thread(s)"


def make_model(algo: str, env_id: str, n_envs: int, n_steps: int, backend: str = "dummy", seed: int = 0, **kwargs: Any):
    """A GPG or PPO model with identical hyperparameters (PPO adds its critic's defaults)."""
    from stable_baselines3 import PPO

    from sb3_gpg import GPG
    from sb3_gpg.vec_env import make_vec_env

    env = make_vec_env(env_id, n_envs, backend=backend, seed=seed)
    hyperparameters = dict(n_steps=n_steps, batch_size=max(n_envs * n_steps // 4, 2), n_epochs=4, seed=seed, **kwargs)
    return (GPG if algo == "gpg" else PPO)("MlpPolicy", env, **hyperparameters)


def iterations(model, n: int) -> float:
    """Run ``n`` more iterations and return the elapsed seconds."""
    start = time.perf_counter()
    model.learn(n * model.n_envs * model.n_steps, reset_num_timesteps=False)
    return time.perf_counter() - start


def write(out: Path, name: str, title: str, table: str, note: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "benchmarks.speed", *sys.argv[1:]])
    text = f"### {title}\n\n`{command}`\n\nMachine: {machine()}.\n\n{table}\n{note}\n"
    (out / f"{name}.md").write_text(text)
    print(text)


def throughput(args: argparse.Namespace) -> None:
    rows = []
    for env_id in args.envs:
        for n_envs in args.n_envs:
            models = {algo: make_model(algo, env_id, n_envs, args.n_steps) for algo in ALGOS}
            for model in models.values():
                iterations(model, 1)  # warm-up: first reset, allocations
            seconds = defaultdict(list)
            for _ in range(args.rounds):
                for algo, model in models.items():
                    seconds[algo].append(iterations(model, args.iterations))
            steps = args.iterations * n_envs * args.n_steps
            ratios = [p / g for g, p in zip(seconds["gpg"], seconds["ppo"], strict=True)]
            speed = {algo: steps / statistics.median(seconds[algo]) for algo in ALGOS}
            rows.append(
                [
                    env_id,
                    n_envs,
                    f"{speed['gpg']:,.0f}",
                    f"{speed['ppo']:,.0f}",
                    f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f})",
                ]
            )
            print(rows[-1], flush=True)
    table = markdown(["task", "envs", "GPG steps/s", "PPO steps/s", "GPG / PPO (median, min-max over rounds)"], rows)
    note = (
        f"\n{args.rounds} rounds of {args.iterations} iterations each, GPG and PPO alternating; n_steps={args.n_steps}, "
        "4 minibatches, 4 epochs, 64-64 tanh actor (PPO: plus its 64-64 critic), DummyVecEnv.\n"
    )
    write(args.out, "throughput", "End-to-end throughput, GPG vs PPO", table, note)


def _memory_worker(algo: str, env_id: str, n_envs: int, n_steps: int, n_iterations: int, queue) -> None:
    th.set_num_threads(1)
    model = make_model(algo, env_id, n_envs, n_steps)
    model.learn(n_iterations * n_envs * n_steps)
    params = sum(p.numel() for p in model.policy.parameters())
    optimizer = sum(
        t.numel() * t.element_size()
        for state in model.policy.optimizer.state.values()
        for t in state.values()
        if th.is_tensor(t)
    )
    buffer = model.rollout_buffer
    arrays = [v for v in vars(buffer).values() if isinstance(v, np.ndarray)]
    arrays += [v for obs in [buffer.observations] if isinstance(obs, dict) for v in obs.values()]
    buffer_bytes = sum(a.nbytes for a in arrays)
    queue.put(
        dict(
            params=params,
            optimizer=optimizer,
            buffer=buffer_bytes,
            peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        )
    )


def memory(args: argparse.Namespace) -> None:
    context = mp.get_context("spawn")
    rows = []
    for env_id in args.envs:
        for n_envs in args.n_envs:
            results = {}
            for algo in ALGOS:
                queue = context.Queue()
                process = context.Process(target=_memory_worker, args=(algo, env_id, n_envs, args.n_steps, 2, queue))
                process.start()
                results[algo] = queue.get()
                process.join()
            for algo in ALGOS:
                r = results[algo]
                rows.append(
                    [
                        env_id,
                        n_envs,
                        algo.upper(),
                        f"{r['params']:,}",
                        f"{r['optimizer'] / 1024:,.0f} KiB",
                        f"{r['buffer'] / 2**20:,.1f} MiB",
                        f"{r['peak_rss'] / 2**20:,.0f} MiB",
                    ]
                )
            print(rows[-2:], flush=True)
    table = markdown(["task", "envs", "algo", "policy parameters", "optimizer state", "rollout buffer", "peak RSS"], rows)
    note = (
        f"\nn_steps={args.n_steps}; each algorithm trained 2 iterations in a fresh process "
        "(peak RSS includes Python, torch and the envs).\n"
    )
    write(args.out, "memory", "Memory, GPG vs PPO", table, note)


def instrument(model) -> dict[str, float]:
    """Wrap the pieces of one iteration with timers (instance attributes: the model's classes are untouched)."""
    totals: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - start

        return wrapper

    model.env.step = timed("env stepping", model.env.step)
    model.policy.forward = timed("policy forward (rollout)", model.policy.forward)
    model.rollout_buffer.compute_returns_and_advantage = timed(
        "advantage estimation", model.rollout_buffer.compute_returns_and_advantage
    )
    model.collect_rollouts = timed("rollout total", model.collect_rollouts)
    model.train = timed("update (train)", model.train)
    return totals


def breakdown(args: argparse.Namespace) -> None:
    rows = []
    for env_id in args.envs:
        for n_envs in args.n_envs:
            for algo in ALGOS:
                model = make_model(algo, env_id, n_envs, args.n_steps, backend=args.backend)
                iterations(model, 1)
                totals = instrument(model)
                wall = iterations(model, args.iterations)
                parts = {
                    name: totals[name] / args.iterations
                    for name in ("env stepping", "policy forward (rollout)", "advantage estimation", "update (train)")
                }
                parts["rest of rollout loop"] = totals["rollout total"] / args.iterations - sum(
                    parts[n] for n in ("env stepping", "policy forward (rollout)", "advantage estimation")
                )
                parts["other (logging, callbacks)"] = (
                    wall / args.iterations - totals["rollout total"] / args.iterations - parts["update (train)"]
                )
                per_iteration = wall / args.iterations
                rows.append(
                    [env_id, n_envs, algo.upper(), f"{per_iteration * 1e3:,.0f} ms"]
                    + [f"{t * 1e3:,.1f} ({100 * t / per_iteration:.0f}%)" for t in parts.values()]
                )
                print(rows[-1], flush=True)
    header = [
        "task",
        "envs",
        "algo",
        "iteration",
        "env stepping",
        "policy forward",
        "advantages",
        "update",
        "rest of rollout",
        "other",
    ]
    note = (
        f"\nms per iteration (share), mean of {args.iterations} iterations; n_steps={args.n_steps}, backend={args.backend}.\n"
    )
    write(
        args.out,
        f"breakdown_{args.backend}",
        f"Where one iteration goes ({args.backend} backend)",
        markdown(header, rows),
        note,
    )


def estimator(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from gymnasium import spaces

    from sb3_gpg.binning import make_binning
    from sb3_gpg.estimator import group_advantages

    rng = np.random.default_rng(0)
    n_dims = 8  # LunarLander's observation size
    space = spaces.Box(-np.inf, np.inf, (n_dims,))
    sizes = [(e, s) for e in (16, 64, 256, 1024, 4096) for s in (64, 256)] + [(128, 2048)]
    rows, points = [], defaultdict(list)
    for n_envs, n_steps in sorted(sizes, key=lambda es: es[0] * es[1]):
        rewards = rng.normal(size=(n_steps, n_envs))
        starts = rng.random((n_steps, n_envs)) < 1 / 200  # ~200-step episodes
        times = np.zeros((n_steps, n_envs), dtype=np.int64)
        for step in range(1, n_steps):
            times[step] = np.where(starts[step], 0, times[step - 1] + 1)
        # LunarLander-like scales: most coordinates within a few units, so spatial cells are shared.
        observations = (rng.normal(size=(n_steps, n_envs, n_dims)) * 0.5).astype(np.float32)
        row = [n_envs, n_steps, f"{n_envs * n_steps:,}"]
        for name, bin_size in (("time", 1.0), ("space_time", 0.5)):
            binning = make_binning(name, space, bin_size)
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                keys = binning(observations.reshape(n_envs * n_steps, n_dims), times.reshape(-1))
                group_advantages(
                    rewards, starts, keys.reshape(n_steps, n_envs, -1), 0.99, keys_include_time=binning.keys_include_time
                )
                best = min(best, time.perf_counter() - start)
            points[name].append((n_envs * n_steps, best))
            row.append(f"{best * 1e3:,.1f} ms ({best / (n_envs * n_steps) * 1e9:.0f} ns/step)")
        rows.append(row)
        print(row, flush=True)

    figure, axis = plt.subplots(figsize=(6, 4.2))
    for name, values in points.items():
        n, t = np.array(values).T
        slope = np.polyfit(np.log(n[n >= 2**16]), np.log(t[n >= 2**16]), 1)[0]
        axis.loglog(n, t * 1e3, "o-", label=f"{name} (log-log slope {slope:.2f} above 65k steps)")
    reference = np.array([points["time"][0][0], points["time"][-1][0]])
    axis.loglog(reference, reference / reference[0] * points["time"][0][1] * 1e3, "k:", label="linear")
    axis.axhline(50, color="grey", lw=0.8, ls="--")
    axis.text(reference[0], 55, "50 ms target at 128 x 2048", color="grey", fontsize=8)
    axis.set_xlabel("steps in the group (envs x steps per env)")
    axis.set_ylabel(f"estimator time (ms, best of {args.repeats})")
    axis.set_title("GPG advantage estimator, one core")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out / "estimator_scaling.png", dpi=120)
    table = markdown(["envs", "steps per env", "steps", "time binning", "space-time binning (ε = 0.5, 8 dims)"], rows)
    write(
        args.out,
        "estimator",
        "Advantage estimator time against group size",
        table,
        "\nPlot: [estimator_scaling.png](estimator_scaling.png). Includes computing the bin keys; best of "
        f"{args.repeats} runs.\n",
    )


def _raw_stepping(env, policy, n_steps: int) -> float:
    """Step the env with the policy's actions and nothing else: the floor any rollout loop can reach."""
    from stable_baselines3.common.utils import obs_as_tensor

    obs = env.reset()
    start = time.perf_counter()
    for _ in range(n_steps):
        with th.no_grad():
            actions, *_ = policy(obs_as_tensor(obs, policy.device))
        obs, _, _, _ = env.step(actions.numpy())
    return time.perf_counter() - start


def rollout(args: argparse.Namespace) -> None:
    rows = []
    for env_id in args.envs:
        for backend in args.backends:
            try:
                model = make_model("gpg", env_id, args.large_envs, args.n_steps, backend=backend)
            except ImportError as error:
                rows.append([env_id, backend, "-", "-", f"unavailable: {error}"])
                continue
            iterations(model, 1)
            totals = instrument(model)
            iterations(model, args.iterations)
            collect = totals["rollout total"] / args.iterations
            raw = min(_raw_stepping(model.env, model.policy, args.n_steps) for _ in range(args.iterations))
            steps = args.large_envs * args.n_steps
            rows.append([env_id, backend, f"{steps / raw:,.0f}", f"{steps / collect:,.0f}", f"**{collect / raw:.2f}x**"])
            print(rows[-1], flush=True)
            model.env.close()
    table = markdown(
        ["task", "backend", "raw stepping + policy (steps/s)", "GPG rollout collection (steps/s)", "collection / raw time"],
        rows,
    )
    write(
        args.out,
        "rollout",
        f"Rollout collection against raw stepping, {args.large_envs} envs",
        table,
        f"\nn_steps={args.n_steps}; collection includes the buffer, episode times, callbacks and the advantage estimator.\n",
    )


def large(args: argparse.Namespace) -> None:
    rows = []
    for env_id in args.envs:
        gpg = make_model("gpg", env_id, args.large_envs, args.n_steps, backend=args.backend)
        ppo = make_model("ppo", env_id, args.large_envs, args.n_steps, backend="dummy")
        for model in (gpg, ppo):
            iterations(model, 1)
        seconds = defaultdict(list)
        for _ in range(args.rounds):
            seconds["gpg"].append(iterations(gpg, args.iterations))
            seconds["ppo"].append(iterations(ppo, args.iterations))
        steps = args.iterations * args.large_envs * args.n_steps
        ratios = [p / g for g, p in zip(seconds["gpg"], seconds["ppo"], strict=True)]
        rows.append(
            [
                env_id,
                args.large_envs,
                f"{steps / statistics.median(seconds['gpg']):,.0f}",
                f"{steps / statistics.median(seconds['ppo']):,.0f}",
                f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f})",
            ]
        )
        print(rows[-1], flush=True)
    table = markdown(
        ["task", "envs", f"GPG on {args.backend} (steps/s)", "PPO on DummyVecEnv (steps/s)", "GPG / PPO (median, min-max)"],
        rows,
    )
    write(
        args.out,
        f"large_{args.backend}",
        f"End to end at {args.large_envs} envs: GPG on {args.backend} vs PPO on DummyVecEnv",
        table,
        f"\n{args.rounds} alternating rounds of {args.iterations} iterations; n_steps={args.n_steps}, "
        "4 minibatches, 4 epochs.\n",
    )


def learner(args: argparse.Namespace) -> None:
    """GPG's learner on the CPU against the GPU, on a batched backend: iteration time split into its parts."""
    rows = []
    for env_id in args.envs:
        for n_envs in args.n_envs:
            for device in args.devices:
                model = make_model("gpg", env_id, n_envs, args.n_steps, backend=args.backend, device=device)
                iterations(model, 1)  # warm-up: first reset, allocations, CUDA kernels
                totals = instrument(model)
                wall = iterations(model, args.iterations) / args.iterations
                steps = n_envs * args.n_steps
                parts = [totals[name] / args.iterations for name in ("env stepping", "policy forward (rollout)",
                                                                      "advantage estimation", "update (train)")]  # fmt: skip
                rows.append(
                    [env_id, n_envs, device, f"{steps / wall:,.0f}", f"{wall * 1e3:,.0f}"] + [f"{t * 1e3:,.0f}" for t in parts]
                )
                print(rows[-1], flush=True)
                model.env.close()
    header = ["task", "envs", "learner", "env steps/s", "iteration (ms)", "env stepping", "policy forward", "advantages",
              "update"]  # fmt: skip
    note = (
        f"\nn_steps={args.n_steps}, 4 minibatches, 4 epochs, 64-64 tanh actor; {args.backend} backend; mean of "
        f"{args.iterations} iterations after one warm-up; torch threads {th.get_num_threads()}. Times in ms per iteration.\n"
    )
    write(args.out, f"learner_{args.backend}", f"GPG's learner on {' vs '.join(args.devices)} ({args.backend} backend)",
          markdown(header, rows), note)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("throughput", "memory", "breakdown", "estimator", "rollout", "large", "learner"))
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "LunarLander-v3"], help="gymnasium env ids")
    parser.add_argument("--n-envs", nargs="+", type=int, default=[16, 128], help="parallel env counts")
    parser.add_argument("--large-envs", type=int, default=1024, help="env count of `rollout` and `large`")
    parser.add_argument("--n-steps", type=int, default=128, help="steps per env per rollout")
    parser.add_argument("--iterations", type=int, default=2, help="iterations per timed chunk")
    parser.add_argument("--rounds", type=int, default=5, help="alternating GPG/PPO rounds")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each estimator timing (best is kept)")
    parser.add_argument("--backend", default="dummy", help="env backend of `breakdown` and GPG's in `large`")
    parser.add_argument("--backends", nargs="+", default=["dummy", "gymnasium", "envpool"], help="backends of `rollout`")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="torch devices of `learner`")
    parser.add_argument("--out", type=Path, default=RESULTS / "speed", help="folder of the markdown tables and plots")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    globals()[args.command](args)


if __name__ == "__main__":
    main()
