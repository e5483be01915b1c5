"""Dice whose every roll the test chooses, for the gateway simulator's failure injection.

Rates of 0 and 1 make the failure injection deterministic by themselves; what is left is the timeout's
coin: a roll below 0.5 captures before the hang, one above records nothing.
"""

from __future__ import annotations

import random
from typing import Any

CAPTURED_BEFORE_THE_HANG = 0.25
NOTHING_RECORDED = 0.75


class ChosenRolls(random.Random):
    """Every ``random()`` returns ``value``; ``choice`` picks the first item."""

    def __init__(self) -> None:
        super().__init__(0)
        self.value = CAPTURED_BEFORE_THE_HANG

    def random(self) -> float:
        return self.value

    def choice(self, seq: Any) -> Any:
        return seq[0]
