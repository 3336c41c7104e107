"""crossrec.data: sources, schema, unification and bundles.

Declare sources in a TOML file (:mod:`crossrec.data.sources`), ingest them into a bundle
(:func:`ingest`, or ``crossrec ingest``) and load the bundle as typed domains (:func:`load_bundle`).
"""

from crossrec.data.bundle import SCHEMA_VERSION, Bundle, load_bundle
from crossrec.data.domain import AttributeKind, Domain
from crossrec.data.errors import BundleError, CredentialError, IngestError, LinkKeyError, SourcesError
from crossrec.data.ingestion import IngestResult, ingest
from crossrec.data.interactions import Interactions
from crossrec.data.sources import SourcesFile, load_sources
from crossrec.data.vocabulary import Vocabulary

__all__ = [
    "SCHEMA_VERSION",
    "AttributeKind",
    "Bundle",
    "BundleError",
    "CredentialError",
    "Domain",
    "IngestError",
    "IngestResult",
    "Interactions",
    "LinkKeyError",
    "SourcesError",
    "SourcesFile",
    "Vocabulary",
    "ingest",
    "load_bundle",
    "load_sources",
]
