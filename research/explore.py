"""Quick exploration of blends on movielens-cdr at small fractions (validation-driven; test shown for info)."""

import sys

sys.path.insert(0, "research")
import numpy as np

from _data import keep_fraction, load_movielens
from _families import SourceCache
from _models import dense_scorer, item_counts, per_user_max_normalise
from _select import halves, ranking_metrics

pair = load_movielens()
cache = SourceCache(pair)
S = pair.source_in_target_items()
src_counts = item_counts(S)
linked = src_counts > 0
print("linked target items", linked.sum(), "of", pair.n_items)


def ev(scores, kept):
    _, v, _ = ranking_metrics(dense_scorer(scores), pair.valid, kept)
    return v


for f in [float(x) for x in sys.argv[1].split(",")]:
    kept = keep_fraction(pair.train, f)
    a, b = halves(int((np.diff(pair.valid.indptr) > 0).sum()))
    n_t = kept.shape[0]
    ct = item_counts(kept)
    Pt = np.log1p(ct)[None, :]
    res = {}
    res["pop_t"] = ev(np.repeat(Pt, n_t, 0), kept)
    res["pop_full"] = ev(np.repeat(np.log1p(item_counts(pair.train))[None], n_t, 0), kept)
    Ps = np.log1p(src_counts)[None, :]
    res["pop_s"] = ev(np.repeat(Ps, n_t, 0), kept)
    for beta in (0.3, 1, 3, 10, 30):
        sm = np.log(ct + beta * src_counts / src_counts.sum() * ct.sum() + 0.1)[None]
        res[f"pop_smooth{beta}"] = ev(np.repeat(sm, n_t, 0), kept)
    for l2 in (3000.0, 30000.0):
        E = per_user_max_normalise(np.asarray(kept @ cache.ease(l2)))
        for w in (0.1, 0.3, 1.0):
            res[f"Es{l2:g}+{w}Pt"] = ev(E + w * Pt, kept)
    for key, v in res.items():
        print(f"f={f} {key:22s} all {v.mean():.4f} A {v[a].mean():.4f} B {v[b].mean():.4f}", flush=True)
