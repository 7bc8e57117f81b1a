"""
``sb3-gpg``: the RL Zoo's command line with GPG among its algorithms.

``sb3-gpg COMMAND [ZOO FLAGS...]`` (or ``python -m sb3_gpg COMMAND ...``) runs the Zoo's own script for
COMMAND with the Zoo's own flags, after registering GPG (:func:`sb3_gpg.zoo.register`)::

    sb3-gpg train --algo gpg --env CartPole-v1 -f logs --seed 0
    sb3-gpg enjoy --algo gpg --env CartPole-v1 -f logs --no-render -n 5000 --deterministic
    sb3-gpg train --algo ppo --env CartPole-v1 -f logs      # every Zoo algorithm works too

``train`` runs with :class:`sb3_gpg.zoo.GPGExperimentManager`, so ``--algo gpg`` reads the packaged
``gpg.yml`` unless ``--conf-file`` names another config, and a bad entry stops before training.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import importlib
import importlib.util
import runpy
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sb3_gpg.arguments import ArgumentError

PROG = "sb3-gpg"

#: The commands, each the Zoo script it runs and what it does.
COMMANDS: dict[str, str] = {
    "train": "train an agent, or tune its hyperparameters with -optimize (rl_zoo3 train)",
    "enjoy": "run a trained agent and print its mean episode reward (rl_zoo3 enjoy)",
    "record_video": "record a video of a trained agent (python -m rl_zoo3.record_video)",
    "plot_train": "plot the training reward of runs in a logs folder (rl_zoo3 plot_train)",
    "all_plots": "plot and compare the evaluations of several algorithms/folders (rl_zoo3 all_plots)",
    "plot_from_file": "plot results saved by all_plots (rl_zoo3 plot_from_file)",
}
#: Flags of ``train`` beyond the Zoo's (``train -h`` shows the Zoo's only).
TRAIN_FLAGS: dict[str, str] = {
    "--vec-env BACKEND": "dummy or subproc (the Zoo's), or a batched backend: gymnasium, envpool",
    "--heartbeat-interval S": "-optimize with a database --storage: seconds between two heartbeats of a trial",
    "--grace-period S": "seconds without a heartbeat after which a trial's worker counts as dead",
    "--max-retry N": "how many times a dead worker's trial is queued again",
}
# Commands whose --env names a gymnasium env, checked before the Zoo starts.
_ENV_COMMANDS = ("train", "enjoy", "record_video")


def _usage() -> str:
    width, flag_width = max(map(len, COMMANDS)), max(map(len, TRAIN_FLAGS))
    lines = [
        f"usage: {PROG} COMMAND [ARGS...]",
        "",
        "The RL Zoo's command line (rl_zoo3), with Group Policy Gradient registered as --algo gpg.",
        f"Each command takes the Zoo's flags: {PROG} COMMAND -h lists them.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()),
        "",
        "train also takes:",
        *(f"  {flag:<{flag_width}}  {text}" for flag, text in TRAIN_FLAGS.items()),
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _program_argv(command: str, args: Sequence[str]) -> Iterator[None]:
    # The Zoo's scripts parse sys.argv; their usage lines then read "sb3-gpg train ...".
    saved = sys.argv
    sys.argv = [f"{PROG} {command}", *args]
    try:
        yield
    finally:
        sys.argv = saved


def _check_env(args: Sequence[str]) -> None:
    """Check ``--env`` (after importing ``--gym-packages``) before the Zoo builds anything."""
    from sb3_gpg import zoo

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env", default="CartPole-v1")  # the Zoo's default
    parser.add_argument("--gym-packages", nargs="+", default=[])
    known, _ = parser.parse_known_args(args)
    for module in known.gym_packages:
        importlib.import_module(module)
    zoo.check_env_id(str(known.env))


def _train() -> None:
    import rl_zoo3.train

    from sb3_gpg import zoo
    from sb3_gpg.zoo.manager import ZOO_BACKENDS

    # Flags that the Zoo's parser does not know (its --vec-env knows dummy|subproc only): taken out of the arguments
    # and handed to the experiment manager; --vec-env dummy|subproc goes back to the Zoo, which builds those envs.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--vec-env", default="dummy")
    parser.add_argument("--heartbeat-interval", type=int, default=zoo.Heartbeat.interval)
    parser.add_argument("--grace-period", type=int, default=zoo.Heartbeat.grace_period)
    parser.add_argument("--max-retry", type=int, default=zoo.Heartbeat.max_retry)
    known, zoo_args = parser.parse_known_args(sys.argv[1:])
    _check_params(zoo_args)
    try:
        heartbeat = zoo.Heartbeat(known.heartbeat_interval, known.grace_period, known.max_retry)
    except ArgumentError as error:
        raise zoo.ZooConfigError(f"--{error.argument.replace('_', '-')}: {error}") from error
    backend = known.vec_env
    sys.argv = [sys.argv[0], *zoo_args, *(["--vec-env", backend] if backend in ZOO_BACKENDS else [])]
    # The Zoo's train() builds its ExperimentManager by this module-level name; GPGExperimentManager only
    # changes what concerns --algo gpg (default config, checks, n_envs tuning), the batched backends and tuning.
    manager = functools.partial(zoo.GPGExperimentManager, vec_env_backend=backend, heartbeat=heartbeat)
    with _replaced(rl_zoo3.train, "ExperimentManager", manager):
        rl_zoo3.train.train()


def _check_params(args: Sequence[str]) -> None:
    """
    Evaluate ``-params key:value ...`` as the Zoo's parser will (its ``StoreDict`` evals each value as Python), so
    that a value it cannot evaluate (``n_envs:four``, an unquoted string) stops with the key named rather than with
    a traceback from inside argparse.
    """
    import rl_zoo3.utils

    from sb3_gpg import zoo

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[])
    known, _ = parser.parse_known_args(args)
    for text in known.hyperparams:
        key, _, value = text.partition(":")
        try:
            eval(value, dict(vars(rl_zoo3.utils)))
        except Exception as error:
            raise zoo.ZooConfigError(
                f"-params {text}: the Zoo evaluates the value of {key!r} as Python, and {value!r} fails ({error}). "
                f"Quote strings (-params {key}:\"'{value}'\") and write numbers and lists as in Python."
            ) from error


@contextlib.contextmanager
def _replaced(module: object, name: str, value: object) -> Iterator[None]:
    # Safe here: the command runs one Zoo script, in the main thread, once per process.
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def _enjoy() -> None:
    from rl_zoo3.enjoy import enjoy

    enjoy()


def _record_video() -> None:
    # The Zoo's record_video is a script (its code runs under `if __name__ == "__main__"`).
    runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=False)


def _plot(name: str) -> Callable[[], None]:
    def run() -> None:
        if name == "plot_from_file":
            from rl_zoo3.plots.plot_from_file import plot_from_file

            plot_from_file()
            return
        # plot_train and all_plots are loaded from their files: the package rl_zoo3.plots imports all its
        # scripts, plot_from_file's rliable (and its dependencies) included, which these two do not need.
        spec = importlib.util.find_spec("rl_zoo3")
        assert spec is not None and spec.submodule_search_locations
        path = Path(spec.submodule_search_locations[0]) / "plots" / f"{name}.py"
        module_spec = importlib.util.spec_from_file_location(f"_sb3_gpg_zoo_{name}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        getattr(module, name)()

    return run


_RUNNERS: dict[str, Callable[[], None]] = {
    "train": _train,
    "enjoy": _enjoy,
    "record_video": _record_video,
    "plot_train": _plot("plot_train"),
    "all_plots": _plot("all_plots"),
    "plot_from_file": _plot("plot_from_file"),
}


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None:
        return 0
    if isinstance(exit_.code, int):
        return exit_.code
    print(exit_.code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run ``sb3-gpg COMMAND [ARGS...]``.

    :param argv: The arguments after the program name (default: ``sys.argv[1:]``): a command of
        :data:`COMMANDS` and the Zoo's flags for it.
    :return: The exit status: 0 on success, 2 for a usage error or a configuration refused before training
        (its message is printed on stderr), else the Zoo script's status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from sb3_gpg import __version__

        print(f"{PROG} {__version__}")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        matches = difflib.get_close_matches(command, list(COMMANDS), n=1)
        hint = f" Did you mean {matches[0]!r}?" if matches else ""
        print(f"{PROG}: error: unknown command {command!r}.{hint} Commands: {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2

    from sb3_gpg import zoo

    try:
        if command in _ENV_COMMANDS and not {"-h", "--help"} & set(args):
            _check_env(args)
        zoo.register()
        with _program_argv(command, args):
            _RUNNERS[command]()
    except zoo.ZooConfigError as error:
        print(f"{PROG} {command}: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:
        return _exit_code(exit_)
    return 0


if __name__ == "__main__":
    sys.exit(main())
