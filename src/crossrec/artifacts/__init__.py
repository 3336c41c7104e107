"""Model artifacts: a trained model saved as a verifiable folder that recommends on its own.

Typical use::

    save_artifact("runs/demo/artifact", model, users=domain.users, items=domain.items,
                  train=split.matrix("train"), config=config, evaluation=summary)
    artifact = load_artifact("runs/demo/artifact")
    artifact.recommend("196", k=10)
    artifact.recommend_cold(["Toy Story (1995)"], k=10)
    artifact.similar_items("Toy Story (1995)", k=10)
"""

from crossrec.artifacts.artifact import (
    Artifact,
    ArtifactMetadata,
    ColdStartModel,
    ItemItemModel,
    RecommendationPath,
    Recommendations,
)
from crossrec.artifacts.encoders import EncoderState, StatefulEncoder
from crossrec.artifacts.errors import (
    ArtifactCapabilityError,
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactVersionError,
    ColdStartInputError,
    UnknownIdError,
)
from crossrec.artifacts.store import load_artifact, save_artifact, verify_artifact

__all__ = [
    "Artifact",
    "ArtifactCapabilityError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactMetadata",
    "ArtifactVersionError",
    "ColdStartInputError",
    "ColdStartModel",
    "EncoderState",
    "ItemItemModel",
    "RecommendationPath",
    "Recommendations",
    "StatefulEncoder",
    "UnknownIdError",
    "load_artifact",
    "save_artifact",
    "verify_artifact",
]
