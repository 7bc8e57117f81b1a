"""Learning benchmark: GPG against SB3's PPO, same seeds and hyperparameters (paper Table 1, Figures 2-3).

Tasks: CartPole-v1, CliffWalking-v1 (with a 200-step TimeLimit: it has none by default), LunarLander-v3 and
HalfCheetah-v5, each at 1, 4, 16, 32 and 128 parallel envs, 200 iterations (rollout + update) per run, so a run
takes ``200 * n_envs * n_steps`` env steps. One hyperparameter set per task from the paper's sources, shared by
both algorithms (``harness.TASKS``); PPO also gets its critic (``gae_lambda`` of the source, ``vf_coef`` 0.5).
Evaluation: the final policy, deterministic, on 5 episodes per training seed, each on a fresh env with its own
seed (VecNormalize statistics of training, frozen).

Profiles (``--profile``):

- ``paper``: the paper's protocol where ``reduced`` shrinks it: 4 seeds x 5 eval episodes, rollouts of 1024
  (LunarLander, at 64 and 128 envs) and 2048 (HalfCheetah, at 16 and 32 envs) steps per env, both algorithms on
  envpool's batched envs (``throughput --profile paper``: ~7 CPU hours on the 2-core machine). CartPole and
  CliffWalking are not in it: ``reduced`` runs them at the paper's protocol already. HalfCheetah at 128 envs
  (52M env steps per run) is left to a bigger machine.
- ``reduced``: sized for a 2-core machine from measured throughput (``throughput`` below): ~6 CPU hours with the
  binning ablation (``benchmarks.ablation``), ~3 h with 2 workers. Changes: 2 seeds (0, 1) instead of 4; LunarLander
  rollouts of 256 steps per env instead of 1024 and HalfCheetah 256 instead of 2048 (4x and 8x fewer env steps per
  iteration; the minibatch rule and every other hyperparameter unchanged); LunarLander at 1-32 envs (128 would add
  2.3 CPU hours), HalfCheetah at 1-16 (32 and 128 would add ~10). Unchanged: 200 iterations, 5 eval episodes per
  seed, CartPole and CliffWalking entirely (128 steps, all of 1-128 envs).
- ``smoke``: a one-minute check of the harness (its report never replaces the RESULTS.md section).

Usage (from the repository root)::

    python -m benchmarks.learning throughput --profile reduced   # time each task; predict the sweep
    python -m benchmarks.learning plan --profile reduced         # the runs, which are missing, their duration
    python -m benchmarks.learning run --profile reduced --workers 1
    python -m benchmarks.learning report --profile reduced       # tables, plots, RESULTS.md section

Runs are ordered seed by seed, then env count, then task, GPG then PPO, so an interrupted sweep holds paired
GPG/PPO results for every cell of the first seed. Each finished run writes
``benchmarks/results/learning/<profile>/<task>/<algo>_n<envs>_s<seed>.json``; a restarted sweep skips those.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import cli
from benchmarks.harness import ALGOS, PROFILES, TASKS, RunSpec, build_model, check_choice, estimate_minutes, run_one
from benchmarks.harness import throughput_file as throughput_path
from benchmarks.report import CellScores, filled_curve, machine, machines, markdown_table
from benchmarks.sweep import Run, load_results

# Paper Table 1: reward after 200 iterations, mean ± std over 4 training seeds x 5 eval seeds. CartPole at 1-16
# envs is unreadable in the source text.
PAPER_TABLE_1: dict[tuple[str, int, str], str] = {}
for _task, _column in {
    "cartpole": [None] * 6 + ["481.10 ± 10.85", "442.80 ± 15.04", "495.45 ± 2.13", "474.20 ± 7.61"],
    "cliffwalking": ["-261.30 ± 70.56", "-442.93 ± 73.40", "-17.45 ± 0.11", "-17.62 ± 0.15", "-17.00 ± 0.00",
                     "-17.00 ± 0.00", "-17.15 ± 0.09", "-17.00 ± 0.00", "-17.00 ± 0.00", "-17.00 ± 0.00"],
    "halfcheetah": ["333.70 ± 94.87", "679.33 ± 278.55", "1031.65 ± 24.77", "1346.30 ± 15.33", "1000.05 ± 130.02",
                    "736.45 ± 149.77", "1940.86 ± 142.08", "1142.48 ± 570.77", "2773.61 ± 222.93", "1516.90 ± 305.42"],
    "lunarlander": ["-18.78 ± 6.76", "-19.58 ± 12.73", "74.29 ± 10.33", "117.77 ± 5.39", "75.81 ± 12.26",
                    "157.59 ± 10.03", "169.67 ± 20.79", "157.77 ± 10.00", "257.39 ± 0.80", "200.97 ± 4.42"],
}.items():  # fmt: skip
    for _i, _value in enumerate(_column):
        PAPER_TABLE_1[_task, (1, 4, 16, 32, 128)[_i // 2], ALGOS[_i % 2]] = _value or "unreadable"


def plan(args: argparse.Namespace) -> list[Run]:
    """The sweep's runs in round-robin order: seed, env count, task, algorithm."""
    for algo in args.algos:
        check_choice("algo", algo, ALGOS)
    settings = PROFILES[args.profile]
    counts = sorted(
        n for n in {n for task in args.tasks for n in settings.env_counts[task]} if not args.envs or n in args.envs
    )
    specs = [
        RunSpec(task, algo, n_envs, seed, args.profile)
        for seed in args.seeds or settings.seeds
        for n_envs in counts
        for task in args.tasks
        if n_envs in settings.env_counts[task]
        for algo in args.algos
    ]
    return [Run(spec, spec.result_file) for spec in specs]


def throughput(args: argparse.Namespace) -> None:
    """Time a few iterations of each (task, algo, env count) in this process and predict the sweep's duration."""
    settings = PROFILES[args.profile]
    rows, total = [], 0.0
    for task in args.tasks:
        for n_envs in settings.env_counts[task]:
            if args.envs and n_envs not in args.envs:
                continue
            for algo in args.algos:
                model = build_model(RunSpec(task, algo, n_envs, 0, args.profile))
                steps = n_envs * model.n_steps
                model.learn(steps)  # warm-up: first reset, allocations
                start = time.perf_counter()
                model.learn(args.iterations * steps, reset_num_timesteps=False)
                seconds = (time.perf_counter() - start) / args.iterations
                per_run = seconds * settings.iterations
                total += per_run * len(settings.seeds)
                rows.append([TASKS[task].title, n_envs, algo.upper(), model.n_steps, f"{steps / seconds:,.0f}",
                             f"{seconds:.3f}", f"{per_run / 60:.1f}"])  # fmt: skip
                print(rows[-1], flush=True)
                model.get_env().close()
    table = markdown_table(["task", "envs", "algo", "n_steps", "env steps/s", "s/iteration", "min per run"], rows)
    text = (
        f"Command: `{args.command_line}`\nMachine: {machine()}, one torch thread.\n\n{table}\n"
        f"Predicted {args.profile} learning sweep: {total / 3600:.1f} CPU hours with 1 worker, {total / 7200:.1f} h with "
        "2. The `plan` command of every sweep estimates its runs from this table.\n"
    )
    path = throughput_path(args.out, args.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)


def plot_curves(profile: str, task: str, records: dict[RunSpec, dict], out: Path) -> list[Path]:
    """Per task: one PNG against iterations and one against env steps, a subplot per env count, GPG and PPO
    (mean over seeds, shaded min-max)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = PROFILES[profile].env_counts[task]
    paths = []
    for axis in ("iterations", "steps"):
        fig, axes = plt.subplots(1, len(counts), figsize=(3.4 * len(counts), 3.2), sharey=True, squeeze=False)
        for ax, n_envs in zip(axes[0], counts, strict=True):
            for algo, color in zip(ALGOS, ("tab:red", "tab:blue"), strict=True):
                runs = [filled_curve(r) for s, r in records.items() if s.algo == algo and s.n_envs == n_envs]
                if not runs:
                    continue
                length = min(len(values) for _, values in runs)
                values = np.vstack([v[:length] for _, v in runs])
                x = np.arange(1, length + 1) if axis == "iterations" else np.mean([s[:length] for s, _ in runs], axis=0)
                with warnings.catch_warnings():  # all-NaN columns: no episode has ended yet in any seed
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, low, high = np.nanmean(values, 0), np.nanmin(values, 0), np.nanmax(values, 0)
                ax.plot(x, mean, color=color, lw=1.3, label=f"{algo.upper()} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
                ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
            ax.set_title(f"{n_envs} env{'s' if n_envs > 1 else ''}")
            ax.set_xlabel("iteration" if axis == "iterations" else "env steps")
            if axis == "steps":
                ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        axes[0][0].set_ylabel("training episode return")
        fig.suptitle(f"{TASKS[task].env_id}: GPG vs PPO ({profile} profile; mean over seeds, shaded min-max)",
                     fontsize=10)  # fmt: skip
        fig.tight_layout()
        path = out / f"{task}_curves_{axis}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def profile_plan(profile: str, tasks: list[str]) -> list[Run]:
    """A profile's whole plan (both algorithms, its seeds and env counts) for those of ``tasks`` it runs."""
    names = argparse.Namespace(algos=list(ALGOS), profile=profile, envs=None, seeds=None,
                               tasks=[task for task in tasks if task in PROFILES[profile].env_counts])  # fmt: skip
    return plan(names)


def protocol_rows(
    profile: str, tasks: list[str], results: dict[RunSpec, dict], expected: int | None = None
) -> list[list[str]]:
    """Table 1 rows of one profile: ``[protocol, envs, algo, (ours, paper) per task]``, cells from ``results``,
    each expecting ``expected`` runs (default: the profile's seeds)."""
    settings = PROFILES[profile]
    label = "paper protocol" if profile == "paper" else profile
    rows = []
    for n_envs in sorted({n for task in tasks for n in settings.env_counts.get(task, ())}):
        for algo in ALGOS:
            row: list[str] = [label, str(n_envs), algo.upper()]
            for task in tasks:
                paper = PAPER_TABLE_1.get((task, n_envs, algo), "-")
                if n_envs not in settings.env_counts.get(task, ()):
                    row += ["-", "-"] if profile == "paper" else ["not in profile", paper]
                    continue
                cell = CellScores(expected or len(settings.seeds))
                for spec, record in results.items():
                    if (spec.task, spec.algo, spec.n_envs) == (task, algo, n_envs):
                        cell.add(record)
                row += [cell.text(), paper]
            rows.append(row)
    return rows


def report(args: argparse.Namespace, runs: list[Run], records: dict[Run, dict]) -> str:
    """Table 1 next to the paper's, learning-curve plots and the text of the RESULTS.md section. The report of a
    published profile adds the paper profile's cells (their rows labelled "paper protocol") and curves."""
    profile, tasks, out = args.profile, args.tasks, args.folder
    settings = PROFILES[profile]
    results = {run.spec: record for run, record in records.items()}
    seeds = args.seeds or settings.seeds
    expected = len(seeds)
    rows = protocol_rows(profile, tasks, results, expected)
    paper_runs = profile_plan("paper", tasks) if settings.publish and profile != "paper" else []
    paper_results = {run.spec: record for run, record in load_results(paper_runs, args.out).items()}
    if paper_runs:
        rows += protocol_rows("paper", tasks, paper_results)
    header = ["protocol", "envs", "algo"]
    for task in tasks:
        header += [f"{TASKS[task].title} (ours)", f"{TASKS[task].title} (paper)"]
    table = markdown_table(header, rows)

    plots = []
    for task in tasks:
        plots += plot_curves(profile, task, {s: r for s, r in results.items() if s.task == task}, out)
    for task in dict.fromkeys(spec.task for spec in paper_results):  # the paper protocol's tasks with runs
        folder = args.out / "learning" / "paper"
        folder.mkdir(parents=True, exist_ok=True)
        plots += plot_curves("paper", task, {s: r for s, r in paper_results.items() if s.task == task}, folder)
    plot_links = "\n".join(
        f"- {p.stem.replace('_', ' ')} ({p.parent.name}): [{p.name}](results/learning/{p.parent.name}/{p.name})" for p in plots
    )

    settings_rows = []
    for task in tasks:
        t = TASKS[task]
        n_steps = settings.n_steps[task]
        batches = ", ".join(f"{n}: {t.batch_size(n, n_steps)}" for n in settings.env_counts[task])
        settings_rows.append([
            t.env_id, t.source, n_steps, f"{'linear from ' if t.anneal_lr else ''}{t.learning_rate:g}", t.gamma,
            t.n_epochs, batches, t.ent_coef, t.gae_lambda, "obs + reward, clip 10" if t.normalize else "-",
            f"TimeLimit({t.time_limit})" if t.time_limit else "-",
        ])  # fmt: skip
    hyper = markdown_table(["task", "source", "n_steps", "learning rate", "gamma", "epochs", "batch size per env count",
                            "entropy", "PPO gae_lambda", "VecNormalize", "wrapper"], settings_rows)  # fmt: skip
    runs_total = sum(len(settings.env_counts[t]) for t in tasks) * len(ALGOS) * expected
    steps_per_s = {}
    for spec, record in results.items():
        steps_per_s.setdefault((spec.task, spec.algo), []).append(record["steps_per_second"])
    speed = ", ".join(f"{TASKS[t].title} {a.upper()} {np.median(v):,.0f}" for (t, a), v in sorted(steps_per_s.items()))
    throughput_file = throughput_path(args.out, profile)
    throughput_text = throughput_file.read_text().strip() if throughput_file.exists() else "not measured"
    paper_text = ""
    if paper_results:
        paper = PROFILES["paper"]
        batches = "; ".join(
            f"{TASKS[t].title} {paper.n_steps[t]} steps per env, batch "
            + ", ".join(f"{n} envs: {TASKS[t].batch_size(n, paper.n_steps[t])}" for n in paper.env_counts[t])
            for t in tasks if t in paper.env_counts
        )  # fmt: skip
        paper_steps = {}
        for spec, record in paper_results.items():
            paper_steps.setdefault((spec.task, spec.n_envs, spec.algo), []).append(record["steps_per_second"])
        paper_speed = ", ".join(
            f"{TASKS[t].title} {n} envs {a.upper()} {np.median(v):,.0f}" for (t, n, a), v in sorted(paper_steps.items())
        )
        paper_text = f"""
Rows "paper protocol" (`python -m benchmarks.learning run --profile paper`): {paper.description}. Same
hyperparameters otherwise; {batches}. Both algorithms train on envpool's C++ envs (through `sb3_gpg.vec_env`, with
SB3's episode bookkeeping) and are evaluated on the gymnasium env, as above. {len(paper_results)} of {len(paper_runs)} runs
finished; median env steps/s per run: {paper_speed}. Its throughput, measured before the sweep:
[throughput.md](results/learning/paper/throughput.md).
"""
    return f"""Command: `{args.command_line}` (runs: `python -m benchmarks.learning run --profile {profile}`).
Machine: {machines(records.values())}, one torch thread per run, shared with other work (timings are noisy).
Profile `{profile}`: {settings.description}. {len(results)} of {runs_total} runs finished.

Cells: final deterministic evaluation return after {settings.iterations} iterations, mean ± std over
{expected} training seeds x {settings.eval_episodes} evaluation episodes, and the interquartile mean with its 95%
stratified-bootstrap confidence interval (rliable, 2000 resamples; the evaluation episodes of all seeds are pooled as
the paper pools them, so the CI does not separate seed-to-seed from episode-to-episode variation). "paper" is
Table 1 of the paper (4 seeds x 5 eval seeds, the paper's rollout lengths: compare the reduced profile's
LunarLander and HalfCheetah cells with it only loosely, they train on 4x and 8x fewer env steps).

{table}{paper_text}
Hyperparameters (shared by GPG and PPO; PPO adds its critic: `gae_lambda` below, `vf_coef` 0.5, a separate 64-64
tanh value network; both: 64-64 tanh policy, clip 0.2, max grad norm 0.5, advantage normalization per minibatch,
Adam eps 1e-5, SB3's DummyVecEnv with Monitor):

{hyper}
Learning curves (training episodes' return per iteration, the mean of the episodes that ended in it, carried forward
when none did; mean over seeds, shaded min-max):

{plot_links}

Median env steps/s per run (training, including updates): {speed or "none yet"}.

Throughput measured before the sweep, which sized the reduced profile
([throughput.md](results/learning/{profile}/throughput.md)):

{throughput_text}
"""


def arguments(command: argparse.ArgumentParser, name: str) -> None:
    command.add_argument("--algos", nargs="+", default=list(ALGOS), help="algorithms (default gpg ppo)")
    if name == "throughput":
        command.add_argument("--iterations", type=int, default=2, help="timed iterations per setting (default 2)")


SUITE = cli.Suite(name="learning", doc=__doc__, section="Learning benchmark", plan=plan, runner=run_one, report=report,
                  tasks=tuple(TASKS), arguments=arguments, estimate=estimate_minutes,
                  commands={"throughput": ("time a few iterations per setting and predict the sweep's duration",
                                           throughput)})  # fmt: skip

if __name__ == "__main__":
    cli.main(SUITE)
