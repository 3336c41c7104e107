import sys

sys.path.insert(0, "research")
import numpy as np
import scipy.sparse as sp

from _data import keep_fraction, load_movielens
from _families import SourceCache
from _models import cosine_knn_weights, dense_scorer, ease_weights, item_counts, per_user_max_normalise
from _select import halves, ranking_metrics

pair = load_movielens()
cache = SourceCache(pair)
S = pair.source_in_target_items().astype(np.float64)
n_s = np.asarray(S.sum(1)).ravel()


def ev(scores, kept):
    _, v, _ = ranking_metrics(dense_scorer(scores), pair.valid, kept)
    return v


weights = {}
for name, rowscale in (
    ("raw", None),
    ("isqrt", 1 / np.sqrt(np.maximum(n_s, 1))),
    ("inv", 1 / np.maximum(n_s, 1)),
):
    M = S if rowscale is None else sp.diags(rowscale) @ S
    G = (M.T @ M).toarray()
    scale = np.trace(G) / len(G)
    for l2f in (0.1, 1.0, 10.0):
        weights[f"ease_{name}_l2x{l2f}"] = ease_weights(G, l2f * scale)
for k in (50, 200):
    weights[f"knn{k}"] = cosine_knn_weights(sp.csr_matrix(S), k, 10.0)
weights["pmi"] = cache.pmi()
f = float(sys.argv[1])
kept = keep_fraction(pair.train, f)
a, b = halves(int((np.diff(pair.valid.indptr) > 0).sum()))
Pt = np.log1p(item_counts(kept))[None, :]
L = cache.group_lift()
for name, W in weights.items():
    E = kept @ W
    E = per_user_max_normalise(E.toarray() if sp.issparse(E) else np.asarray(E))
    line = []
    for w in (0.5, 1.0, 2.0, 4.0):
        v = ev(E + w * Pt, kept)
        line.append(f"w{w}: {v[a].mean():.4f}/{v[b].mean():.4f}")
    v = ev(E + 1.0 * Pt + 0.5 * L, kept)
    line.append(f"w1+L.5: {v[a].mean():.4f}/{v[b].mean():.4f}")
    print(f"f={f} {name:22s} " + "  ".join(line), flush=True)
