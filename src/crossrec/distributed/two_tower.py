"""Data-parallel two-tower model: replicated towers, dense gradients all-reduced by DDP.

What is supported
-----------------
* The user tower is an **ID tower** (a user ID embedding through the fusion); user attributes are not
  supported (``user_modalities`` must stay empty).
* The item tower has an item ID embedding plus, optionally, the item attribute columns named in
  ``item_modalities`` (category, tags, number, text, vector columns), read from the bundle's
  ``items.parquet`` or the built-in dataset's target items by
  :func:`crossrec.distributed.prepare_data`, encoded as
  :class:`crossrec.models.two_tower.TwoTower` does (encoders fitted on items with training
  interactions, identically on every rank). Without ``item_modalities`` the item tower is ID-only, as
  a single-process ``fit(train, valid)`` without feature tables.
* Not supported: attribute-only towers (``item_ids``/``user_ids = false``), warm starts and transfer.

Why a dense all-reduce
----------------------
A step evaluates both towers over the whole domain, as the single-process trainer does, so the fusion
and modality-head parameters, shared by every user or item, have dense gradients that must be summed
over ranks in any design. The ID tables' gradients are row-sparse, but the optimizer is Adam with dense
moments (as in :func:`crossrec.training.train_embedding_model`): every row moves at every step, so the
replicas need the full table gradient, and sparse gradients would force a different optimizer
(``SparseAdam``'s lazy updates) and a different model from the one-process run. One
``DistributedDataParallel`` all-reduce of all parameters keeps every replica equal to the one-process
update at a cost of ``(users + items) x dim`` floats per step. For catalogues where that, or the
full-domain tower pass, is too expensive, the better design computes towers for the batch's entities
only and keeps the ID tables sharded (TorchRec-style row-wise sharding); it is not implemented here.
"""

from __future__ import annotations

from crossrec.models.base import Recommender

__all__ = ["check_data_parallel"]


def check_data_parallel(model: Recommender) -> None:
    """Raise ``ValueError`` when a two-tower configuration cannot train data-parallel (see above)."""
    if getattr(model, "user_modalities", None):
        raise ValueError(
            f"user_modalities={list(model.user_modalities)}: data-parallel two-tower training has an "
            "ID-only user tower (user attributes are not supported); leave user_modalities empty, or train "
            "without --nproc"
        )
    if not (getattr(model, "item_ids", True) and getattr(model, "user_ids", True)):
        raise ValueError(
            "attribute-only towers (item_ids or user_ids false) are not supported data-parallel; "
            "train without --nproc"
        )
