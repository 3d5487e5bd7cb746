"""Argument types for the analysis commands: numbers in scientific notation, checked at parse time,
so a bad value is refused before any fit runs."""

from __future__ import annotations

import argparse
import math


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number")
    return value


def positive(text: str) -> float:
    """A finite number > 0 (1e21 and 1000 alike)."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number")
    return value


def non_negative(text: str) -> float:
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number >= 0")
    return value


def count(text: str) -> int:
    """A whole number >= 0, written as 1000 or 1e3; 1.5 is refused."""
    value = non_negative(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number")
    return int(value)


def positive_count(text: str) -> int:
    value = count(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def level(text: str) -> float:
    """An interval's coverage, strictly between 0 and 1 (0.95)."""
    value = number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a coverage strictly between 0 and 1, e.g. 0.95")
    return value


def huber_delta(text: str) -> float:
    """A Huber threshold > 0; 'inf' makes the objective plain least squares."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    return positive(text)
