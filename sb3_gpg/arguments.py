"""How sb3-gpg refuses an argument: one exception type, and the two generic rules most arguments share.

Every rule on GPG's arguments is written once, next to what it concerns (binnings in :mod:`sb3_gpg.binning`,
estimator options in :class:`sb3_gpg.estimator.EstimatorConfig`, the algorithm's own in
:func:`sb3_gpg.gpg.check_gpg_arguments`). Each raises :class:`ArgumentError`, which names the argument, so that a
caller that knows where the value came from (the RL Zoo layer: "key ``binning`` of entry ``CartPole-v1`` in
gpg.yml") adds that without checking the value again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


class ArgumentError(ValueError):
    """
    An argument sb3-gpg cannot use; the message names the bad value and the valid ones.

    :param argument: The argument's name (a constructor argument, or a YAML key of the same name).
    :param message: What is wrong and what would be valid.
    """

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument


def check_choice(argument: str, value: Any, valid: Iterable[Any]) -> Any:
    """
    :param argument: The argument's name.
    :param value: Its value.
    :param valid: The valid values.
    :return: ``value``, if it is one of ``valid``.
    :raises ArgumentError: naming the value and the valid ones.
    """
    valid = tuple(valid)
    if isinstance(value, bool) or not any(value == choice and type(value) is type(choice) for choice in valid):
        raise ArgumentError(argument, f"Unknown {argument}={value!r}: valid values are {', '.join(map(repr, valid))}.")
    return value


def check_int(argument: str, value: Any, minimum: int = 1) -> int:
    """
    :param argument: The argument's name.
    :param value: Its value.
    :param minimum: The smallest valid value.
    :return: ``value`` as an ``int``, if it is an integer (not a bool, not a float such as ``32.5``) ``>= minimum``.
    :raises ArgumentError: naming the value and the valid range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ArgumentError(argument, f"{argument}={value!r} must be an integer >= {minimum}.")
    return int(value)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (a bool is not: YAML's ``yes`` must not pass for 1)."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
    )


def check_bool(argument: str, value: Any) -> bool:
    """
    :param argument: The argument's name.
    :param value: Its value.
    :return: ``value`` as a ``bool``, if it is ``True`` or ``False``.
    :raises ArgumentError: for anything else (a string ``"false"`` would otherwise count as true).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(argument, f"{argument}={value!r} must be True or False.")
    return bool(value)
