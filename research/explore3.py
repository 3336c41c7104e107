import sys

sys.path.insert(0, "research")
import numpy as np

from _data import keep_fraction, load_movielens
from _families import SourceCache
from _models import dense_scorer, ease_weights, item_counts, per_user_max_normalise
from _select import halves, ranking_metrics

pair = load_movielens()
cache = SourceCache(pair)
S = pair.source_in_target_items().astype(np.float64)
G = (S.T @ S).toarray()
scale = np.trace(G) / len(G)
Ps = np.log1p(item_counts(S))[None]


def ev(scores, kept):
    _, v, _ = ranking_metrics(dense_scorer(scores), pair.valid, kept)
    return v


for f in (0.05, 0.1):
    kept = keep_fraction(pair.train, f)
    a, b = halves(int((np.diff(pair.valid.indptr) > 0).sum()))
    Pt = np.log1p(item_counts(kept))[None, :]
    n_u = np.asarray(kept.sum(1))
    for l2f in (1.0, 10.0):
        W = ease_weights(G, l2f * scale)
        raw = np.asarray(kept @ W)
        E = per_user_max_normalise(raw)
        Ez = (raw - raw.mean(1, keepdims=True)) / (raw.std(1, keepdims=True) + 1e-9)
        for label, X in (("max", E), ("z", Ez)):
            line = []
            for w, v in ((1, 0), (1, 0.5), (1, 1), (2, 0.5), (2, 1), (0.3, 0.3) if label == "z" else (4, 2)):
                s = ev(X + w * Pt - v * Ps, kept)
                line.append(f"w{w}v{v}: {s[a].mean():.4f}/{s[b].mean():.4f}")
            print(f"f={f} l2x{l2f} {label} " + "  ".join(line), flush=True)
        # user-adaptive weight
        for m in (2, 5, 10):
            s = ev(E * (n_u / (n_u + m)) * 3 + Pt, kept)
            print(f"f={f} l2x{l2f} adaptive m{m}: {s[a].mean():.4f}/{s[b].mean():.4f}", flush=True)
