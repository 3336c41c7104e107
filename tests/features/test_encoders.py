"""Encoders: each modality's encoding, persistence without pickle, and errors that name ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.features import (
    CategoryEncoder,
    FeatureEncoders,
    FeatureTable,
    FeatureValueError,
    NumberEncoder,
    TagsEncoder,
    TfidfTextEncoder,
    VectorEncoder,
    encoder_from_state,
    vectors_from_npy,
    vectors_from_parquet,
)


def roundtrip(encoder):
    import json

    config = json.loads(json.dumps(encoder.config))
    return encoder_from_state(config, {k: np.array(v) for k, v in encoder.state_arrays().items()})


def test_category_unknown_and_missing_share_bucket_zero():
    encoder = CategoryEncoder().fit(["b", "a", "b", None])
    assert encoder.width == 3
    codes = encoder.transform(["a", "b", "zzz", None, ""])
    assert codes.tolist() == [1, 2, 0, 0, 0]
    assert encoder.present(["a", None, "", "q"]).tolist() == [True, False, False, True]
    assert roundtrip(encoder).transform(["b", "new"]).tolist() == [2, 0]


def test_category_min_count_sends_rare_values_to_the_bucket():
    encoder = CategoryEncoder(min_count=2).fit(["a", "a", "b"])
    assert encoder.transform(["a", "b"]).tolist() == [1, 0]


def test_tags_are_the_mean_of_known_tags():
    encoder = TagsEncoder().fit([["Drama", "Comedy"], ["Drama"], "Action|Drama"])
    out = encoder.transform([["Drama", "Comedy"], [], ["Horror"], "Action"])
    drama, comedy, action = (1 + encoder.tags_.tolist().index(t) for t in ("Drama", "Comedy", "Action"))
    assert out[0, drama] == pytest.approx(0.5) and out[0, comedy] == pytest.approx(0.5)
    assert out[1].sum() == 0  # no tag: absent
    assert out[2, 0] == 1.0  # unknown tag -> shared bucket
    assert out[3, action] == 1.0
    assert encoder.present([["Drama"], [], None]).tolist() == [True, False, False]
    np.testing.assert_allclose(roundtrip(encoder).transform([["Drama"]]), encoder.transform([["Drama"]]))


def test_numbers_are_standardised_with_a_missing_indicator():
    encoder = NumberEncoder().fit([1.0, 2.0, 3.0, np.nan])
    out = encoder.transform([2.0, np.nan, "4"])
    assert out[0].tolist() == [0.0, 0.0]
    assert out[1].tolist() == [0.0, 1.0]
    assert out[2, 0] == pytest.approx(2 / np.std([1, 2, 3]))
    log = NumberEncoder(log=True).fit([0, 9, 99])
    assert roundtrip(log).transform([9]).tolist() == log.transform([9]).tolist()


def test_vectors_standardised_and_missing_rows_zero():
    encoder = VectorEncoder().fit([[1.0, 0.0], [3.0, 2.0], None])
    out = encoder.transform([[2.0, 1.0], None])
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.0, 0.0]])
    assert encoder.present([[1, 2], None]).tolist() == [True, False]
    np.testing.assert_allclose(roundtrip(encoder).transform([[3.0, 2.0]]), encoder.transform([[3.0, 2.0]]))


def test_tfidf_text_restores_without_pickle_and_similar_titles_are_close():
    titles = [
        "star wars new hope",
        "star wars empire strikes back",
        "pride and prejudice",
        "sense and sensibility",
    ]
    encoder = TfidfTextEncoder(dim=3, min_df=1).fit(titles * 2)
    out = encoder.transform(titles + ["star wars return of the jedi", ""])
    assert out.shape == (6, encoder.width)
    assert out[5].sum() == 0 and not encoder.present(["", "x"])[0]
    assert out[4] @ out[0] > out[4] @ out[2]
    np.testing.assert_allclose(roundtrip(encoder).transform(titles), out[:4], atol=1e-6)


def table(frame: pd.DataFrame, kinds: dict[str, str]) -> FeatureTable:
    return FeatureTable(frame, kinds, np.array([f"item-{i}" for i in range(len(frame))]))


def test_text_column_of_numbers_is_rejected_naming_ids():
    bad = table(pd.DataFrame({"title": [1995, 1996, 1997]}), {"title": "text"})
    with pytest.raises(FeatureValueError, match=r"holds numbers.*item-0"):
        FeatureEncoders.for_table(bad).fit(bad)


def test_vectors_of_different_lengths_and_nan_are_rejected_naming_ids():
    uneven = table(pd.DataFrame({"image": [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0, 3.0]]}), {"image": "vector"})
    with pytest.raises(FeatureValueError, match=r"length 2.*item-2"):
        FeatureEncoders.for_table(uneven).fit(uneven)
    nan = table(pd.DataFrame({"image": [[1.0, 2.0], [np.nan, 2.0]]}), {"image": "vector"})
    with pytest.raises(FeatureValueError, match=r"NaN.*item-1"):
        FeatureEncoders.for_table(nan).fit(nan)


def test_number_column_with_words_is_rejected():
    bad = table(pd.DataFrame({"year": ["1995", "unknown"]}), {"year": "number"})
    with pytest.raises(FeatureValueError, match=r"not numbers.*item-1"):
        FeatureEncoders.for_table(bad).fit(bad)


def test_feature_encoders_roundtrip_and_schema_check(featured_domain):
    items = FeatureTable.from_domain(featured_domain, "item")
    encoders = FeatureEncoders.for_table(items).fit(items, np.arange(40))
    encoded = encoders.transform(items)
    restored = FeatureEncoders.from_state(encoders.config, encoders.state_arrays())
    again = restored.transform(items)
    for column in items.columns:
        np.testing.assert_allclose(encoded.inputs[column], again.inputs[column], atol=1e-6)
        assert (encoded.present[column] == again.present[column]).all()
    with pytest.raises(ValueError, match="missing columns"):
        encoders.transform(items.select(["genre"]))


def test_vectors_from_npy_and_parquet_align_to_the_vocabulary(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    np.savez(tmp_path / "v.npz", ids=np.array(["b", "a"]), vectors=np.array([[1.0, 2.0], [3.0, 4.0]]))
    aligned = vectors_from_npy(tmp_path / "v.npz", ["a", "b", "c"])
    assert aligned[0].tolist() == [3.0, 4.0] and aligned[2] is None
    np.save(tmp_path / "m.npy", np.eye(2))
    (tmp_path / "m.ids.txt").write_text("a\nc\n")
    assert vectors_from_npy(tmp_path / "m.npy", ["c"])[0].tolist() == [0.0, 1.0]
    pq.write_table(
        pa.table({"id": ["a", "b", "c"], "emb": [[1.0, 2.0], [1.0], [0.0, 1.0]]}), tmp_path / "v.parquet"
    )
    series = vectors_from_parquet(
        tmp_path / "v.parquet", ["a", "b", "c"], id_column="id", vector_column="emb"
    )
    frame = table(pd.DataFrame({"emb": series}), {"emb": "vector"})
    with pytest.raises(FeatureValueError, match="item-1"):
        FeatureEncoders.for_table(frame).fit(frame)
