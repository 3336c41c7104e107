"""Study 1: sequence-aware course recommendation on Canvas Network (the published split, from the bundle).

Compares popularity, a first-order Markov chain and the multi-gap transition model (history, horizon
and preference term selected on the validation split carved from the training part), with paired
bootstrap 95% CIs over learners, and saves the selected model.

    python examples/education/study_sequences.py BUNDLE [--save runs/education-markov]
"""

from __future__ import annotations

import argparse
import itertools

from _bundle import canvas_split, load_platforms, paired_summary

from crossrec.evaluation import evaluate_ranking
from crossrec.models.markov import TransitionRecommender
from crossrec.models.popularity import Popularity
from crossrec.models.sequences import evaluate_next_items
from crossrec.selection import SequenceHoldout, select


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--save", default=None, help="folder to save the selected model in")
    args = parser.parse_args()

    train, test, head, valid = canvas_split(load_platforms(args.bundle)["canvas"])
    print(
        f"canvas: {train.n_users:,} learners, {train.n_items} courses, "
        f"{len(train):,} train / {len(test):,} test"
    )

    popularity = Popularity().fit(train.to_csr())
    metrics = ["recall", "precision", "ndcg", "hit"]
    results = {
        "popularity": evaluate_ranking(
            popularity.score, test.to_csr(), train.to_csr(), metrics=metrics, ks=[10]
        ),
        "markov (1st order)": evaluate_next_items(
            TransitionRecommender(history=1, horizon=1).fit(train), train, test
        ),
    }
    grid = [
        TransitionRecommender(history=h, horizon=g, preference_weight=p)
        for h, g, p in itertools.product((1, 2, 4), (1, 2, 4), (0.0, 0.1, 0.2, 0.4))
    ]
    selection = select(grid, SequenceHoldout(head, valid))
    best = selection.model
    chosen = {k: best.get_params()[k] for k in ("history", "horizon", "preference_weight")}
    print(
        f"selected on validation (NDCG@10 {selection.score:.4f}, {len(selection.trials)} fits in "
        f"{selection.seconds:.0f} s): {chosen}"
    )
    final = best.clone().fit(train)
    results["markov (tuned)"] = evaluate_next_items(final, train, test)

    for name, result in results.items():
        m = result.mean()
        print(
            f"{name:20s} recall@10 {m['recall@10']:.4f} precision@10 {m['precision@10']:.4f} "
            f"ndcg@10 {m['ndcg@10']:.4f} hit ratio {m['hit@10']:.4f}"
        )
    baseline = results["markov (1st order)"].per_user["ndcg@10"].to_numpy()
    tuned = results["markov (tuned)"].per_user["ndcg@10"].to_numpy()
    print("NDCG@10 tuned vs 1st order, " + paired_summary("difference", tuned, baseline))
    if args.save:
        print(f"saved to {final.save(args.save)}")


if __name__ == "__main__":
    main()
