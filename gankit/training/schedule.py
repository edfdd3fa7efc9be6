"""Learning-rate schedules: pure functions of the training position.

A schedule computed from the step alone, rather than kept as a scheduler object with its own
counter, cannot drift from the run: a resumed run is at the same point of it by construction
(the CycleGAN reference needs --epoch_count by hand to get this right).
"""

from __future__ import annotations


def linear_decay(position: float, start: float, length: float) -> float:
    """The learning-rate factor: 1 before `start`, then linearly down to 0 at `start + length`.

    With start + length at the end of the run, the last step trains at 1/length of the rate,
    never at zero (as the reference's 1 - (epoch - n_epochs) / (n_epochs_decay + 1))."""
    assert length > 0, "config validation requires a positive decay length"
    return 1.0 - min(max((position - start) / length, 0.0), 1.0)
