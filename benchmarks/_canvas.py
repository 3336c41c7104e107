"""Canvas Network (CNPC) as a sparse target, the XuetangX platforms as sources linked by content only.

No learner or course id is shared between the platforms (``../shared/data/README.md``). The only
bridge is course content: each MOOCCube course's name and description is matched (TF-IDF cosine,
English stop words removed) against the names of Canvas's ten disciplines, and a course joins the
discipline it matches best (courses that match none are left out). MOOCCubeX's published files carry
no course text or category (only anonymous knowledge-graph triples), so it cannot be linked this way
and is not used. The published Canvas split is reproduced with
``benchmarks/education.py``'s :func:`load_cnpc` (each learner's last 20% is test); validation is the
last 20% of each learner's training part, as in that benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from education import CANVAS, load_cnpc
from sklearn.feature_extraction.text import TfidfVectorizer

from crossrec.data.interactions import Interactions
from crossrec.models.sequences import Sequences

__all__ = ["MOOCCUBE", "CanvasCase", "discipline_links", "load_canvas_case"]

MOOCCUBE = "edu-xuetangx-mooccube"


@dataclass(frozen=True)
class CanvasCase:
    """The target's sequences and categories, and the source mapped onto those categories."""

    head: Sequences  # each learner's training part minus validation (what the curve thins)
    valid: Sequences  # the last 20% of each learner's training part
    test: Sequences  # the published test part (each learner's last 20%)
    disciplines: np.ndarray  # one category per Canvas course
    discipline_names: list[str]
    source: Sequences  # MOOCCube learners' enrolments in file (time) order
    source_categories: np.ndarray  # (MOOCCube courses, disciplines) one-hot, zero rows unmapped
    mapped_source_courses: int


def discipline_links(texts: list[str], names: list[str]) -> np.ndarray:
    """One-hot ``(len(texts), len(names))``: each text's best-matching name by TF-IDF cosine (a zero
    row when it shares no word with any name)."""
    encoder = TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=2).fit(texts + names)
    similarity = (encoder.transform(texts) @ encoder.transform(names).T).toarray()
    links = np.zeros_like(similarity)
    matched = similarity.max(axis=1) > 0
    links[np.flatnonzero(matched), similarity[matched].argmax(axis=1)] = 1.0
    return links


def load_canvas_case(data_dir: Path) -> CanvasCase:
    train, test = load_cnpc(data_dir)
    head, valid = train.split_last(0.2)
    courses = pd.read_json(data_dir / CANVAS / "cnpc_course_info_v3.json", lines=True)
    courses = courses.set_index("course_idx2").reindex(range(train.n_items))
    codes, names = pd.factorize(courses["discipline"].fillna("unknown"), sort=True)

    folder = data_dir / MOOCCUBE
    enrolments = pd.read_json(folder / "test_data_mooccube_v4.json", lines=True)
    info = pd.read_json(folder / "course_info_v5_mooccube.json", lines=True).set_index("course_idx2")
    n_courses = int(max(info.index.max(), enrolments["item"].max())) + 1
    info = info.reindex(range(n_courses))
    texts = (info["name"].fillna("") + ". " + info["about"].fillna("")).tolist()
    links = discipline_links(texts, list(names))
    rows = Interactions(
        enrolments["user"].to_numpy(), enrolments["item"].to_numpy(), np.ones(len(enrolments))
    )
    source = Sequences.from_interactions(rows, int(enrolments["user"].max()) + 1, n_courses)
    return CanvasCase(
        head=head,
        valid=valid,
        test=test,
        disciplines=codes.astype(np.int64),
        discipline_names=list(names),
        source=source,
        source_categories=links,
        mapped_source_courses=int(links.sum()),
    )
