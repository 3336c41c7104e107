"""Multi-modal features: encoders for categories, tags, numbers, text and precomputed vectors,
fitted on training data and saved with the model (safetensors + JSON, no pickle); towers that
fuse modalities (concatenation, gates, attention) with modality dropout. (Item cold-start splits live in
:mod:`crossrec.splitting`, modality ablation in :mod:`crossrec.evaluation`.)

Typical use::

    items = FeatureTable.from_domain(domain, "item")
    model = TwoTower(fusion="gated").fit_with(train, valid, FitInputs(item_features=items))
"""

from crossrec.features.encoders import (
    ENCODERS,
    KINDS,
    CategoryEncoder,
    FeatureEncoder,
    FeatureValueError,
    NumberEncoder,
    TagsEncoder,
    VectorEncoder,
    encoder_from_state,
    register_encoder,
)
from crossrec.features.fusion import (
    FUSIONS,
    AttentionFusion,
    ConcatFusion,
    GatedFusion,
    ModalitySpec,
    Tower,
    make_fusion,
)
from crossrec.features.table import (
    EncodedFeatures,
    EncoderOptions,
    FeatureEncoders,
    FeatureSchemaError,
    FeatureTable,
    make_encoder,
    vectors_from_npy,
    vectors_from_parquet,
)
from crossrec.features.text import (
    SentenceEncoder,
    TextModelUnavailableError,
    TfidfTextEncoder,
    default_cache_dir,
)

__all__ = [
    "ENCODERS",
    "FUSIONS",
    "KINDS",
    "AttentionFusion",
    "CategoryEncoder",
    "ConcatFusion",
    "EncodedFeatures",
    "EncoderOptions",
    "FeatureEncoder",
    "FeatureEncoders",
    "FeatureSchemaError",
    "FeatureTable",
    "FeatureValueError",
    "GatedFusion",
    "ModalitySpec",
    "NumberEncoder",
    "SentenceEncoder",
    "TagsEncoder",
    "TextModelUnavailableError",
    "TfidfTextEncoder",
    "Tower",
    "VectorEncoder",
    "default_cache_dir",
    "encoder_from_state",
    "make_encoder",
    "make_fusion",
    "register_encoder",
    "vectors_from_npy",
    "vectors_from_parquet",
]
