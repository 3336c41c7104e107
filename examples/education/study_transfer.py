"""Study 2: transfer from XuetangX to Canvas Network without shared ids.

Strategies, each against Canvas-only SASRec (same configuration, same seed):

* ``encoder``: SASRec pretrained on MOOCCubeX learners; its sequence encoder (positions, Transformer
  blocks, final norm; not the item table) initialises the Canvas model;
* ``content``: the Canvas item table starts from course content in a text space shared with XuetangX:
  TF-IDF + SVD (``crossrec.features.TfidfTextEncoder``) fitted on MOOCCube course names and
  descriptions plus the Canvas discipline names, applied to each Canvas course's discipline;
* ``encoder+content``: both (with ``--with-both``).

The negative-transfer guard compares each strategy with Canvas-only on the validation split carved
from the training part (never on test) and ships the transfer only when its validation NDCG@10 is higher.
Each model is trained on the training part minus its last 20% with early stopping on that 20%, then
refitted on the whole training part for the chosen number of epochs. Test results are reported with
paired bootstrap 95% CIs over learners.

    python examples/education/study_transfer.py BUNDLE [--source-learners 20000 --pretrain-epochs 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _bundle import canvas_split, load_platforms, paired_summary, sequences_of

from crossrec.features import TfidfTextEncoder
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.sasrec import SASRec
from crossrec.models.sequences import Sequences, evaluate_next_items


def sasrec(epochs: int, threads: int) -> SASRec:
    optim = {"learning_rate": 3e-3, "epochs": epochs, "patience": 3, "threads": threads}
    return SASRec(dim=64, max_length=20, horizon=3, optim=optim)


def content_vectors(platforms, dim: int) -> np.ndarray:
    """Canvas course vectors in a text space fitted on MOOCCube course text + Canvas discipline names."""
    mooccube = platforms["mooccube"].item_features
    canvas = platforms["canvas"].item_features
    corpus = (mooccube["name"].fillna("") + ". " + mooccube["about"].fillna("")).tolist()
    disciplines = canvas["discipline"].fillna("unknown").astype(str).tolist()
    encoder = TfidfTextEncoder(dim=dim, min_df=2).fit(corpus + sorted(set(disciplines)))
    vectors = encoder.transform(disciplines).astype(np.float32)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, vectors.shape).astype(np.float32)  # courses of one discipline must differ
    vectors = vectors / max(float(vectors.std()), 1e-6) + 0.5 * noise
    return vectors * dim**-0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument(
        "--source-learners", type=int, default=20_000, help="MOOCCubeX learners to pretrain on"
    )
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--with-both", action="store_true", help="also run encoder+content")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    platforms = load_platforms(args.bundle)
    train, test, head, valid = canvas_split(platforms["canvas"])

    started = time.perf_counter()
    source = sequences_of(platforms["mooccubex"])
    keep = np.random.default_rng(0).permutation(source.n_users)[: args.source_learners]
    source = Sequences.from_lists([source.history(u) for u in np.sort(keep)], source.n_items)
    pretrained = sasrec(args.pretrain_epochs, args.threads).fit(source)
    encoder = pretrained.encoder_state()
    print(
        f"pretrained on {source.n_users:,} MOOCCubeX learners in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    content = content_vectors(platforms, 64)

    strategies = {
        "canvas-only": FitInputs(),
        "encoder": FitInputs(init=EmbeddingInit(state=encoder)),
        "content": FitInputs(init=EmbeddingInit(item=content)),
    }
    if args.with_both:
        strategies["encoder+content"] = FitInputs(init=EmbeddingInit(item=content, state=encoder))
    valid_scores, test_results = {}, {}
    for name, init in strategies.items():
        started = time.perf_counter()
        # validation (guard + number of epochs) on the head, then refit on the whole training part
        probe = sasrec(args.epochs, args.threads).fit_with(head, valid, init)
        valid_scores[name] = evaluate_next_items(probe, head, valid).per_user["ndcg@10"].to_numpy()
        final = sasrec(probe.best_epoch_, args.threads).fit_with(train, None, init)
        test_results[name] = evaluate_next_items(final, train, test).per_user
        means = test_results[name].mean()
        print(
            f"{name:16s} valid ndcg@10 {valid_scores[name].mean():.4f} | "
            f"test recall@10 {means['recall@10']:.4f} "
            f"ndcg@10 {means['ndcg@10']:.4f} hit {means['hit@10']:.4f} | epochs {probe.best_epoch_} "
            f"({time.perf_counter() - started:.0f}s)",
            flush=True,
        )

    print("\nNDCG@10 difference to canvas-only (paired bootstrap 95% CI over learners)")
    for name in list(strategies)[1:]:
        print("  valid " + paired_summary(name, valid_scores[name], valid_scores["canvas-only"]))
        print(
            "  test  "
            + paired_summary(
                name,
                test_results[name]["ndcg@10"].to_numpy(),
                test_results["canvas-only"]["ndcg@10"].to_numpy(),
            )
        )
    ship = max(valid_scores, key=lambda n: valid_scores[n].mean())
    print(f"\nnegative-transfer guard (validation NDCG@10): ships '{ship}'")


if __name__ == "__main__":
    main()
