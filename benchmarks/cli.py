"""The command line of every sweep suite: ``python -m benchmarks.<suite> {plan,run,report} [flags]``.

A suite is a :class:`Suite`: how to plan its runs from the flags, the function that does one run, and the report
function that turns the finished records into a markdown section. :func:`main` gives every suite the same
sub-commands and flags:

- ``plan``: the runs, which are done, broken or missing, and an estimate of the missing ones' duration;
- ``run``: the missing (and broken) runs, resumable, ``--workers`` in parallel;
- ``report``: tables and plots under ``--out``, and the suite's section of ``--results-md`` (RESULTS.md beside the
  results folder by default) unless the profile is not published (``smoke``).

Flags of all three: ``--profile --tasks --envs --seeds --out``, plus the suite's own.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import PROFILES, TASKS, check_choice
from benchmarks.report import RESULTS, replace_section, with_notes
from benchmarks.sweep import Run, Runner, load_results, pending, run_sweep

COMMANDS = {"plan": "list the runs, which are missing, and estimate their duration", "run": "run the missing runs",
            "report": "write the tables, the plots and the RESULTS.md section"}  # fmt: skip


@dataclass(frozen=True)
class Suite:
    """A sweep suite.

    :param name: Its module (``benchmarks.<name>``) and results folder (``<out>/<name>/<profile>/``, where its
        report is ``<name>.md``).
    :param doc: The module's docstring (the ``--help`` text).
    :param section: Heading of its RESULTS.md section.
    :param plan: ``plan(args) -> runs``, in the order to run them.
    :param runner: ``runner(spec, progress_position) -> record``, module-level.
    :param report: ``report(args, runs, records) -> markdown body``, given the finished runs' records (plots go to
        ``args.folder``).
    :param tasks: Default of ``--tasks``.
    :param sizes: Default of ``--envs``; None leaves it None (each task's env counts of the profile).
    :param valid_tasks: What ``--tasks`` accepts.
    :param after: A new RESULTS.md section goes after this one.
    :param arguments: ``arguments(parser, command)`` adds the suite's own flags to each sub-command.
    :param commands: Further sub-commands, ``name -> (help, function(args))``.
    :param estimate: ``estimate(spec, out) -> minutes or None`` for ``plan``.
    :param profiles: What ``--profile`` accepts: name -> profile, whose ``publish`` says whether its reports replace
        their RESULTS.md section.
    """

    name: str
    doc: str
    section: str
    plan: Callable[[argparse.Namespace], list[Run]]
    runner: Runner
    report: Callable[[argparse.Namespace, list[Run], dict[Run, dict[str, Any]]], str]
    tasks: tuple[str, ...]
    sizes: tuple[int, ...] | None = None
    valid_tasks: tuple[str, ...] = tuple(TASKS)
    after: str | None = None
    arguments: Callable[[argparse.ArgumentParser, str], None] | None = None
    commands: dict[str, tuple[str, Callable[[argparse.Namespace], None]]] = field(default_factory=dict)
    estimate: Callable[[Any, Path], float | None] | None = None
    profiles: Mapping[str, Any] = field(default_factory=lambda: PROFILES)


def parser(suite: Suite) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{suite.name}", description=suite.doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = top.add_subparsers(dest="command", required=True)
    sizes = "the profile's per task" if suite.sizes is None else " ".join(map(str, suite.sizes))
    for name, text in {**COMMANDS, **{name: text for name, (text, _) in suite.commands.items()}}.items():
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--profile", default="reduced", help=f"protocol: {', '.join(suite.profiles)} (default reduced)")
        command.add_argument("--tasks", nargs="+", default=list(suite.tasks),
                             help=f"tasks, of {', '.join(suite.valid_tasks)} (default {' '.join(suite.tasks)})")  # fmt: skip
        command.add_argument("--envs", type=int, nargs="+", default=None if suite.sizes is None else list(suite.sizes),
                             help=f"env counts, i.e. group sizes (default {sizes})")  # fmt: skip
        command.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the profile's)")
        command.add_argument("--out", type=Path, default=RESULTS, help="results root (default benchmarks/results)")
        if name == "run":
            command.add_argument("--workers", type=int, default=1, help="parallel run processes (default 1)")
        if name == "report":
            command.add_argument("--results-md", type=Path,
                                 help=f"markdown file whose {suite.section!r} section is rewritten (default: RESULTS.md "
                                 "beside --out; never for a profile that is not published, such as smoke)")  # fmt: skip
        if suite.arguments is not None:
            suite.arguments(command, name)
    return top


def parse(suite: Suite, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the common flags; ``args.command_line`` is the command as typed from the repository root."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(suite).parse_args(argv)
    try:
        check_choice("profile", args.profile, suite.profiles)
        for task in args.tasks:
            check_choice("task", task, suite.valid_tasks)
        args.tasks = profile_tasks(suite, args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    args.command_line = shlex.join(["python", "-m", f"benchmarks.{suite.name}", *argv])
    args.folder = args.out / suite.name / args.profile
    if args.command == "report" and args.results_md is None:
        args.results_md = args.out.parent / "RESULTS.md"
    return args


def profile_tasks(suite: Suite, args: argparse.Namespace) -> list[str]:
    """``--tasks`` within the profile's: by default the suite's tasks that the profile runs; a task asked for by
    name that the profile does not run is an error naming the ones it does."""
    counts = getattr(suite.profiles[args.profile], "env_counts", None)
    if counts is None:
        return args.tasks
    outside = [task for task in args.tasks if task not in counts]
    if outside and args.tasks != list(suite.tasks):
        raise ValueError(f"profile {args.profile!r} does not run {', '.join(outside)}: its tasks are {', '.join(counts)}.")
    return [task for task in args.tasks if task in counts]


def print_plan(suite: Suite, runs: Sequence[Run], root: Path) -> None:
    total, todo = len(set(runs)), pending(runs, root)
    print(f"{total} runs, {total - len(todo)} done, {len(todo)} to run:")
    for run, broken in todo:
        print(f"  {run.name}" + ("" if broken is None else f" (broken: {broken.reason})"))
    if suite.estimate is None or not todo:
        return
    minutes = [m for m in (suite.estimate(run.spec, root) for run, _ in todo) if m is not None]
    if minutes:
        print(f"Estimated {sum(minutes) / 60:.1f} CPU hours for the {len(minutes)} of them whose setting was measured "
              "(±50%), i.e. about half that with --workers 2 on 2 free cores.")  # fmt: skip
    else:
        print("No duration estimate: none of their settings was measured.")


def report(suite: Suite, args: argparse.Namespace, runs: list[Run]) -> None:
    """The suite's report of the finished runs: ``<folder>/<name>.md`` and, for a published profile, its section of
    ``--results-md``."""
    args.folder.mkdir(parents=True, exist_ok=True)
    body = with_notes(suite.report(args, runs, load_results(runs, args.out)), args.folder)
    path = args.folder / f"{suite.name}.md"
    path.write_text(body)
    print(body)
    if suite.profiles[args.profile].publish:
        replace_section(args.results_md, suite.section, body, after=suite.after)
    else:
        print(f"Profile {args.profile} does not replace its section of {args.results_md}; the report is in {path}.")


def main(suite: Suite, argv: Sequence[str] | None = None) -> None:
    args = parse(suite, argv)
    if args.command in suite.commands:
        suite.commands[args.command][1](args)
        return
    try:
        runs = suite.plan(args)
    except ValueError as error:  # a bad value of a suite's own flag
        raise SystemExit(f"error: {error}") from None
    if args.command == "plan":
        print_plan(suite, runs, args.out)
    elif args.command == "run":
        sys.exit(1 if run_sweep(runs, suite.runner, args.out, args.workers) else 0)
    else:
        report(suite, args, runs)
