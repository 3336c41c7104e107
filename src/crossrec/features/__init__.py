"""Multi-modal features: encoders for categories, tags, numbers, text and precomputed vectors,
fitted on training data and saved with the model (safetensors + JSON, no pickle); towers that
fuse modalities (concatenation, gates, attention) with modality dropout; item cold-start splits
and modality ablation.

Typical use::

    items = FeatureTable.from_domain(domain, "item")
    model = TwoTower(fusion="gated").fit(train, valid, item_features=items)
    table = ablate_modalities(model, split)
"""

from crossrec.features.ablation import MultiModalModel, ablate_modalities, plot_ablation
from crossrec.features.cold_items import ItemColdSplit, item_cold_start_split
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
    "ItemColdSplit",
    "ModalitySpec",
    "MultiModalModel",
    "NumberEncoder",
    "SentenceEncoder",
    "TagsEncoder",
    "TextModelUnavailableError",
    "TfidfTextEncoder",
    "Tower",
    "VectorEncoder",
    "ablate_modalities",
    "default_cache_dir",
    "encoder_from_state",
    "item_cold_start_split",
    "make_encoder",
    "make_fusion",
    "plot_ablation",
    "register_encoder",
    "vectors_from_npy",
    "vectors_from_parquet",
]
