"""crossrec.selection: choose among candidates on validation only, with every trial recorded.

:func:`select` is the one select-on-validation loop of crossrec: the negative-transfer guard,
``auto``, the Optuna search, the benchmarks and the sequence-model grids all call it. It fits each
candidate on the training part, scores it on the validation part (optionally a user subset, with a
share held out for confirmation), records each trial's parameters, score and time, honours a time
budget and reports progress. :func:`compare` gives the paired validation difference of two fitted
models with a bootstrap interval. The data comes as a :class:`Validation`: :class:`Holdout`
(matrices), :class:`SequenceHoldout` (ordered histories) or :class:`~crossrec.transfer.TransferData`.
"""

from crossrec.selection.comparison import Comparison, compare
from crossrec.selection.trials import (
    Candidate,
    NoTrialSucceededError,
    Selection,
    Trial,
    describe_candidate,
    select,
)
from crossrec.selection.validation import Holdout, SequenceHoldout, Validation, parse_metric, split_users

__all__ = [
    "Candidate",
    "Comparison",
    "Holdout",
    "NoTrialSucceededError",
    "Selection",
    "SequenceHoldout",
    "Trial",
    "Validation",
    "compare",
    "describe_candidate",
    "parse_metric",
    "select",
    "split_users",
]
