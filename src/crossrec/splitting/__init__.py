"""crossrec.splitting: seeded train/validation/test protocols of one domain's interactions.

Protocols are pure functions of the interactions and a seed and return a :class:`Split`: per-user
random ratios, leave-one-out, a global time cut, user cold start (a few training interactions, or
none at all: :func:`user_cold_start_split`), item cold start, and splits given
by files (:func:`load_predefined_split`).
"""

from crossrec.splitting.cold_items import (
    RANKED_AMONG,
    ColdSources,
    ItemColdSplit,
    isolate_cold_items,
    item_cold_start_split,
    normalized_titles,
)
from crossrec.splitting.cold_users import COLD_PARTS, UserColdSplit, user_cold_start_split
from crossrec.splitting.predefined import load_predefined_split, read_id_table
from crossrec.splitting.splits import (
    PARTS,
    Split,
    cold_start_split,
    leave_one_out_split,
    predefined_split,
    random_split,
    temporal_split,
)

__all__ = [
    "COLD_PARTS",
    "PARTS",
    "RANKED_AMONG",
    "ColdSources",
    "ItemColdSplit",
    "Split",
    "cold_start_split",
    "isolate_cold_items",
    "item_cold_start_split",
    "leave_one_out_split",
    "load_predefined_split",
    "normalized_titles",
    "predefined_split",
    "random_split",
    "read_id_table",
    "temporal_split",
    "UserColdSplit",
    "user_cold_start_split",
]
