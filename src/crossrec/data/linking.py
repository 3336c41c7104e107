"""Linking across domains: the same person through pseudonymous identity keys, the same item by key or title.

Users are linked when they share any identity key (an HMAC of a normalised email, phone number,
username or account id); keys chain, so the link is the connected component of the user-key graph
and its id is the smallest key in it. Items are linked by a normalised shared key or title, and
optionally by fuzzy title similarity (rapidfuzz). Only links that join at least two domains are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rapidfuzz import fuzz, process
from scipy.sparse.csgraph import connected_components

__all__ = ["LINK_COLUMNS", "fuzzy_title_matches", "item_links", "link_rates", "user_links"]

#: Columns of the bundle's ``links`` table.
LINK_COLUMNS = ["entity", "link_id", "domain", "id", "index", "method", "score"]


def _cross_domain(table: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    spans = table.groupby("link_id")["domain"].transform("nunique")
    kept = table[spans >= 2].copy()
    kept["_domain_order"] = kept["domain"].map({name: i for i, name in enumerate(order)})
    kept = kept.sort_values(["link_id", "_domain_order", "index"], kind="stable")
    return kept[LINK_COLUMNS].reset_index(drop=True)


def user_links(keys: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Link users that share identity keys, directly or through a chain of keys.

    Parameters
    ----------
    keys
        Columns ``domain``, ``id``, ``index`` (in the domain's vocabulary) and ``key`` (hex HMAC),
        one row per (user, key).
    order
        Domain names in declaration order (sets the row order of the result).

    Returns
    -------
    pandas.DataFrame
        :data:`LINK_COLUMNS` rows for users whose component spans two domains or more.
    """
    if keys.empty:
        return pd.DataFrame(columns=LINK_COLUMNS)
    node, nodes = pd.factorize(pd.MultiIndex.from_arrays([keys["domain"], keys["id"]]), sort=True)
    key_node, key_values = pd.factorize(keys["key"], sort=True)
    n_nodes = len(nodes)
    graph = sp.coo_matrix(
        (np.ones(len(keys), dtype=np.int8), (node, n_nodes + key_node)),
        shape=(n_nodes + len(key_values), n_nodes + len(key_values)),
    )
    _, label = connected_components(graph, directed=False)
    # the smallest key of each component names it (key_values are sorted, so the smallest code)
    smallest = np.full(label.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, label[n_nodes:], np.arange(len(key_values)))
    link_code = smallest[label[node]]
    table = pd.DataFrame(
        {
            "entity": "user",
            "link_id": np.asarray(key_values, dtype=object)[link_code],
            "domain": keys["domain"].to_numpy(),
            "id": keys["id"].to_numpy(),
            "index": keys["index"].to_numpy(np.int64),
            "method": "identity",
            "score": 100.0,
        }
    ).drop_duplicates(["link_id", "domain", "id"])
    table["link_id"] = "u" + table["link_id"].str.slice(0, 31)
    return _cross_domain(table, order)


def fuzzy_title_matches(
    queries: np.ndarray, choices: np.ndarray, threshold: float, *, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """For each query title, the index of the most similar choice and its score (-1 where below threshold).

    Uses ``rapidfuzz`` ``token_sort_ratio`` in chunks so that memory stays ``chunk x len(choices)``.
    """
    best = np.full(len(queries), -1, dtype=np.int64)
    score = np.zeros(len(queries), dtype=np.float64)
    if len(queries) == 0 or len(choices) == 0:
        return best, score
    for start in range(0, len(queries), chunk):
        block = process.cdist(
            list(queries[start : start + chunk]),
            list(choices),
            scorer=fuzz.token_sort_ratio,
            score_cutoff=threshold,
            dtype=np.float32,
            workers=1,
        )
        arg = block.argmax(axis=1)
        top = block[np.arange(len(block)), arg]
        hit = top >= threshold
        best[start : start + chunk] = np.where(hit, arg, -1)
        score[start : start + chunk] = np.where(hit, top, 0.0)
    return best, score


def item_links(keys: pd.DataFrame, order: Sequence[str], fuzzy_threshold: float | None) -> pd.DataFrame:
    """Link items across domains by normalised key or title.

    Parameters
    ----------
    keys
        Columns ``domain``, ``id``, ``index``, ``method`` (``key`` or ``title``) and ``key`` (normalised).
    order
        Domain names in declaration order.
    fuzzy_threshold
        When given, a title with no exact match in another domain is linked to the most similar title
        of the other domains scoring at least this (0-100).
    """
    if keys.empty:
        return pd.DataFrame(columns=LINK_COLUMNS)
    table = pd.DataFrame(
        {
            "entity": "item",
            "link_id": (keys["method"] + ":" + keys["key"]).to_numpy(object),
            "domain": keys["domain"].to_numpy(),
            "id": keys["id"].to_numpy(),
            "index": keys["index"].to_numpy(np.int64),
            "method": keys["method"].to_numpy(object),
            "score": 100.0,
        }
    )
    if fuzzy_threshold is not None:
        for domain in order:
            # recomputed each time so that items matched earlier are seen with their new link ids
            titles = table[table["method"].isin(["title", "fuzzy"])]
            spans = titles.groupby("link_id")["domain"].transform("nunique")
            mine = titles[(titles["domain"] == domain) & (spans < 2)]
            others = np.unique(titles.loc[titles["domain"] != domain, "link_id"].to_numpy(object).astype(str))
            if mine.empty or len(others) == 0:
                continue
            queries = mine["link_id"].str.slice(len("title:")).to_numpy(object)
            choices = np.array([other[len("title:") :] for other in others], dtype=object)
            best, score = fuzzy_title_matches(queries, choices, fuzzy_threshold)
            hit = best >= 0
            rows = mine.index[hit]
            table.loc[rows, "link_id"] = others[best[hit]]
            table.loc[rows, "method"] = "fuzzy"
            table.loc[rows, "score"] = score[hit]
    return _cross_domain(table, order)


def link_rates(links: pd.DataFrame, sizes: dict[str, int], order: Sequence[str]) -> list[dict[str, object]]:
    """For every pair of domains, how many of each side's users (or items) have a counterpart in the other.

    Parameters
    ----------
    links
        Links of one entity (users or items), :data:`LINK_COLUMNS`.
    sizes
        Number of users (or items) of each domain.
    order
        Domain names; pairs are reported as ``(order[i], order[j])`` with ``i < j``.
    """
    rates = []
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            left = links[links["domain"] == a]
            right = links[links["domain"] == b]
            shared = np.intersect1d(left["link_id"].to_numpy(str), right["link_id"].to_numpy(str))
            a_linked = int(left.loc[left["link_id"].isin(shared), "index"].nunique())
            b_linked = int(right.loc[right["link_id"].isin(shared), "index"].nunique())
            rates.append(
                {
                    "a": a,
                    "b": b,
                    "shared": len(shared),
                    "a_linked": a_linked,
                    "a_rate": round(a_linked / sizes[a], 6) if sizes[a] else 0.0,
                    "b_linked": b_linked,
                    "b_rate": round(b_linked / sizes[b], 6) if sizes[b] else 0.0,
                }
            )
    return rates
