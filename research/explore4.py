import sys

sys.path.insert(0, "research")
import numpy as np

from _data import keep_fraction, load_movielens
from _families import SourceCache
from _models import dense_scorer, ease_toward, ease_weights, item_counts, per_user_max_normalise
from _select import halves, ranking_metrics

pair = load_movielens()
cache = SourceCache(pair)
Gs = cache.gram()


def ev(scores, kept):
    _, v, _ = ranking_metrics(dense_scorer(scores), pair.valid, kept)
    return v


for f in (0.05, 0.1):
    kept = keep_fraction(pair.train, f)
    a, b = halves(int((np.diff(pair.valid.indptr) > 0).sum()))
    Pt = np.log1p(item_counts(kept))[None, :]
    L = cache.group_lift()
    Gt = (kept.T @ kept).toarray().astype(np.float64)
    cands = {}
    for dw in (0.03, 0.1, 0.3):
        for l2 in (300.0, 3000.0):
            cands[f"joint dw{dw} l2{l2:g}"] = ease_weights(Gt + dw * Gs, l2)
    for l2 in (30.0, 300.0, 3000.0):
        cands[f"toward l2{l2:g}"] = ease_toward(Gt, l2, cache.ease(3000.0))
    for name, W in cands.items():
        E = per_user_max_normalise(np.asarray(kept @ W))
        line = []
        for w in (0.5, 1.0, 2.0):
            s = ev(E + w * Pt, kept)
            line.append(f"w{w}: {s[a].mean():.4f}/{s[b].mean():.4f}")
        s = ev(E + Pt + L, kept)
        line.append(f"w1+L: {s[a].mean():.4f}/{s[b].mean():.4f}")
        print(f"f={f} {name:22s} " + "  ".join(line), flush=True)
