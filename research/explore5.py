import sys

sys.path.insert(0, "research")
import numpy as np
import scipy.sparse as sp

from _data import keep_fraction, load_movielens
from _models import dense_scorer, item_counts, per_user_max_normalise
from _select import halves, ranking_metrics

pair = load_movielens()
S = pair.source_in_target_items().astype(np.float64).tocsr()
ns = np.asarray(S.sum(1)).ravel()


def ev(scores, kept):
    _, v, _ = ranking_metrics(dense_scorer(scores), pair.valid, kept)
    return v


for f in (0.05, 0.1):
    kept = keep_fraction(pair.train, f).astype(np.float64)
    a, b = halves(int((np.diff(pair.valid.indptr) > 0).sum()))
    Pt = np.log1p(item_counts(kept))[None, :]
    overlap = (kept @ S.T).toarray()  # target users x source users
    for alpha in (0.5, 1.0):
        sim = overlap / np.maximum(ns, 1)[None] ** alpha
        for k in (50, 200, 1000):
            top = np.argpartition(-sim, k, axis=1)[:, :k]
            W = np.zeros_like(sim)
            np.put_along_axis(W, top, np.take_along_axis(sim, top, 1), 1)
            for p in (1, 3):
                V = per_user_max_normalise(
                    np.asarray(sp.csr_matrix(W**p) @ S).astype(np.float64) if False else (W**p) @ S.toarray()
                )
                line = []
                for w in (0, 0.5, 1.0, 2.0):
                    s = ev(V + w * Pt, kept)
                    line.append(f"w{w}: {s[a].mean():.4f}/{s[b].mean():.4f}")
                print(f"f={f} a{alpha} k{k} p{p} " + "  ".join(line), flush=True)
