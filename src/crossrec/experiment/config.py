"""The experiment file: one TOML document, validated once into typed settings.

Example (``examples/experiments/movielens_ease_joint.toml``)::

    name = "movielens-ease-joint"
    seed = 2022

    [data]
    builtin = "movielens-cdr"        # or: bundle = "path/to/bundle", target = "...", sources = ["..."]
    link_items = "ids"               # required: "ids" | "bundle" | "none" (movies share titles here)
    link_users = "none"              # required: ML-1M and ML-100K user ids name different people

    [model]
    name = "ease"
    params = { reg = 300.0 }

    [transfer]
    strategy = "joint"               # none | warm_start | finetune | joint | mapping | content | auto
    params = { domain_weight = 0.15 }

    [search]                         # optional: Optuna over this space, on validation only
    n_trials = 20
    [search.space]
    "model.reg" = { low = 50.0, high = 2000.0, log = true }
    "transfer.domain_weight" = { low = 0.0, high = 0.6 }

Several model families instead of one ``[model]`` / ``[transfer]`` pair (each family's transfer is
guarded against its own target-only model; ``crossrec demo`` is such a file, ``demo.toml`` here)::

    [[families]]
    model = { name = "ease", params = { reg = 300.0 } }
    strategy = "joint"
    params = { domain_weight = 0.1 }
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crossrec.rerank import RerankConfig

__all__ = [
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "ExperimentFileError",
    "FamilyConfig",
    "GuardConfig",
    "ModelConfig",
    "SearchConfig",
    "SearchDimension",
    "SplitConfig",
    "TransferConfig",
    "apply_overrides",
    "load_experiment",
]


class ExperimentFileError(ValueError):
    """The experiment file is missing, not TOML, or does not match the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the domains come from."""

    builtin: Literal["movielens-cdr"] | None = Field(None, description="A built-in dataset.")
    data_dir: Path | None = Field(None, description="Cache folder of built-in datasets.")
    bundle: Path | None = Field(None, description="A crossrec bundle folder (from `crossrec ingest`).")
    target: str | None = Field(
        None, description="Target domain name in the bundle (default: its target role)."
    )
    sources: list[str] | None = Field(
        None, description="Source domain names (default: the bundle's sources)."
    )
    source_weights: dict[str, float] = Field(
        default_factory=dict, description="Per-source weight (default 1)."
    )
    link_items: Literal["ids", "bundle", "none"] | None = Field(
        None,
        description="Required to transfer. Link items by equal raw ids (only where ids name the same item "
        "on both sides, e.g. titles), by the bundle's link table, or not at all.",
    )
    link_users: Literal["ids", "bundle", "none"] | None = Field(
        None,
        description="Required to transfer. Link users by equal raw ids (one account id across platforms), "
        "by the bundle's link table (keyed pseudonyms), or not at all.",
    )
    max_users: int | None = Field(None, ge=10, description="Sample this many target users (quick runs).")

    def require_links(self) -> None:
        """Raise unless both link kinds are given: a transfer never links anything by default."""
        missing = [key for key in ("link_items", "link_users") if getattr(self, key) is None]
        if missing:
            raise ValueError(
                f"say how the sources are linked to the target: set data.{' and data.'.join(missing)} to "
                "'ids' (equal raw ids name the same entity in both domains, e.g. movie titles), 'bundle' "
                "(the bundle's link table) or 'none'; nothing is linked by default"
            )

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.builtin is None) == (self.bundle is None):
            raise ValueError(
                "give exactly one of data.builtin (e.g. 'movielens-cdr') or data.bundle (a folder)"
            )
        return self


class SplitConfig(_Strict):
    """How the target's interactions are split (train / valid / test)."""

    protocol: Literal["random", "leave_one_out", "temporal", "cold_start", "no_history"] = Field(
        "random",
        description="random: per-user random ratios; leave_one_out: each user's last item to test; "
        "temporal: a global cut by time; cold_start: a share of users keeps only n_train training items "
        "(chosen among split.cold_users); no_history: a share of the users linked to a source keeps no "
        "target data at all, and selection, the guard and the test figures are on those users.",
    )
    ratios: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1),
        description="train / valid / test shares (random, temporal, no_history's warm users).",
    )
    n_train: int = Field(2, ge=1, description="cold_start: training interactions left to cold users.")
    fraction: float = Field(
        0.2, gt=0, le=1, description="cold_start / no_history: share of the (linked) users made cold."
    )
    cold_users: Literal["all", "linked"] = Field(
        "all",
        description="cold_start: draw the cold users among all target users, or only among those linked "
        "to a source (data.link_users), the users a transfer can help.",
    )
    holdout: Literal["users", "interactions"] = Field(
        "users",
        description="no_history: cold users split into disjoint validation and test users ('users'), "
        "or each cold user's interactions half to validation, half to test ('interactions').",
    )


class ModelConfig(_Strict):
    """A registered model (``crossrec.models``) and its constructor arguments."""

    name: str = Field(
        "ease",
        description="Registered model: ease, item_knn, popularity, bpr_mf, lightgcn, "
        "two_tower, markov, sasrec, gru4rec.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor arguments; gradient models take their optimiser as an optim table.",
    )


class GuardConfig(_Strict):
    """The negative-transfer guard."""

    metric: str = Field("ndcg@10", description="Per-user validation metric the guard compares.")
    require_significant: bool = Field(False, description="Keep the transfer only if its CI is above 0.")


class FamilyConfig(_Strict):
    """One model family of a run with several: the model target-only and, unless ``strategy`` is
    ``"none"``, transferred and guarded against that target-only model."""

    label: str | None = Field(None, description="Name of the family's models (default: the model name).")
    model: ModelConfig = Field(description="The family's model: { name = ..., params = { ... } }.")
    strategy: str = Field("none", description="Transfer strategy ('none': the model target-only only).")
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments of the strategy.")

    @property
    def name(self) -> str:
        """Key of the target-only model in results (``label`` or the model name)."""
        return self.label or self.model.name

    @property
    def transfer_name(self) -> str | None:
        """Key of the transferred model (``name+strategy``), ``None`` for a target-only family."""
        return None if self.strategy == "none" else f"{self.name}+{self.strategy}"


class TransferConfig(_Strict):
    """The transfer strategy and its constructor arguments (the model comes from ``[model]``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sources: list[Path] = Field(
        default_factory=list,
        alias="from",
        description="Source artifacts (from `crossrec pretrain`) to transfer from instead of training on "
        "the source domains: a folder or a list (relative to the experiment file). The strategy must start "
        "from a source model: warm_start, finetune, mapping, content, or joint (which reads the "
        "interactions the artifact keeps).",
    )
    strategy: str = Field(
        "none",
        description="none, warm_start, finetune, joint, mapping, content or auto (--strategy overrides).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Constructor arguments of the strategy (only for this strategy)."
    )
    guard: GuardConfig = Field(default_factory=GuardConfig, description="[transfer.guard]: the guard's test.")
    weights: Literal["auto"] | None = Field(
        None,
        description="'auto': choose each source's weight on half of the validation users among "
        "weight_levels (0 drops the source; recorded in results.json under extra.multi_source); unset: "
        "data.source_weights. Either way the guard then tests every source on the other half (keep_sources).",
    )
    keep_sources: Literal["significant", "positive", "all"] = Field(
        "significant",
        description="With several sources, a source stays in the mix only if the mix with it beats the mix "
        "without it on held-out validation users: with a 95% interval above 0 ('significant'), a mean "
        "above 0 ('positive'), or always ('all'); a dropped source gets weight 0 and the run says so.",
    )
    weight_levels: list[float] = Field(
        default_factory=lambda: [0.0, 0.5, 1.0],
        description="weights = 'auto': the weights tried for each source (times the strategy's own "
        "domain weight; a full grid up to 27 weightings, coordinate ascent beyond).",
    )
    contribution: bool | None = Field(
        None,
        description="Fit each source alone and the mix without each source, and report the validation "
        "and test differences with 95% intervals (default: on with several sources).",
    )

    @field_validator("sources", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | Path) else value


class SearchDimension(_Strict):
    """One searched parameter: a range (``low``/``high``, optional ``log``, ``step``) or ``choices``."""

    low: float | None = Field(None, description="Lower end of a range.")
    high: float | None = Field(None, description="Upper end of a range.")
    log: bool = Field(False, description="Sample the range on a log scale.")
    step: float | None = Field(None, description="Step of a discretised range.")
    integer: bool = Field(False, description="Integers only.")
    choices: list[Any] | None = Field(
        None, description="A list of values to choose from (instead of a range)."
    )

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchDimension:
        if self.choices is None and (self.low is None or self.high is None):
            raise ValueError("give low and high, or choices")
        if self.choices is None and self.low > self.high:  # type: ignore[operator]
            raise ValueError(f"low {self.low} is above high {self.high}")
        return self


class SearchConfig(_Strict):
    """Hyperparameter search with Optuna on the validation part only."""

    n_trials: int = Field(20, ge=1, description="Trials to run (each fitted and scored on validation).")
    metric: str = Field("ndcg@10", description="Per-user validation metric to maximise.")
    timeout_seconds: float | None = Field(
        None, gt=0, description="Start no trial after this many seconds (--budget sets it when unset)."
    )
    space: dict[str, SearchDimension] = Field(
        default_factory=dict,
        description="'model.<param>' (e.g. 'model.optim.learning_rate') or 'transfer.<param>' -> dimension.",
    )

    @model_validator(mode="after")
    def _prefixed(self) -> SearchConfig:
        bad = [key for key in self.space if not key.startswith(("model.", "transfer."))]
        if bad:
            raise ValueError(f"search.space keys must start with 'model.' or 'transfer.', got {bad}")
        return self


class EvaluationConfig(_Strict):
    """Test metrics of the run."""

    metrics: list[str] = Field(
        default_factory=lambda: ["ndcg", "recall", "hit", "precision", "mrr"],
        description="Accuracy metrics on test (beyond-accuracy ones are always added).",
    )
    ks: list[int] = Field(default_factory=lambda: [10, 20], description="Cut-offs K.")
    item_categories: str | None = Field(
        None,
        description="Target item attribute whose (first) value is each item's category, for category "
        "diversity (e.g. 'genres').",
    )


class ExperimentConfig(_Strict):
    """A whole experiment: data, split, model, transfer, search, evaluation, seed and outputs."""

    name: str = Field("experiment", description="Name of the run (its folder is runs/<time>-<name>).")
    title: str | None = Field(None, description="Title of report.html (default: the name).")
    seed: int = Field(2022, description="Seed of the split, the models and the bootstrap.")
    output_dir: Path = Field(Path("runs"), description="Folder of the run folders.")
    num_threads: int | None = Field(None, ge=1, description="torch.set_num_threads for the run.")
    save_artifact: bool = Field(
        False, description="Also save the kept model as a verified artifact (for recommend / serve)."
    )
    refit_artifact: bool = Field(
        True,
        description="Refit the saved artifact on every target interaction (train + valid + test) with the "
        "hyperparameters and epoch counts chosen on validation, so that it serves real users (its seen "
        "items are all their interactions); the split-fitted model stays in the run's models/ folder.",
    )
    keep_models: bool = Field(
        False,
        description="Also save every fitted model under the run's models/ (large for dense models; "
        "the kept one belongs in an artifact, save_artifact).",
    )
    data: DataConfig = Field(description="[data]: where the domains come from and how they are linked.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="[split]: the target's split.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="[model]: the model to train.")
    transfer: TransferConfig = Field(
        default_factory=TransferConfig, description="[transfer]: the strategy and the guard."
    )
    families: list[FamilyConfig] = Field(
        default_factory=list,
        description="Several model families, each transfer guarded against its own target-only model "
        "(instead of [model] and a [transfer] strategy).",
    )
    search: SearchConfig | None = Field(None, description="[search]: Optuna on validation (optional).")
    rerank: RerankConfig | None = Field(
        None,
        description="Also evaluate every model's lists re-ranked for diversity (rows '<model>+rerank'), "
        "e.g. { method = 'mmr', strength = 0.3 } (mmr and calibration use [evaluation] item_categories).",
    )
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig, description="[evaluation]: test metrics."
    )

    @model_validator(mode="after")
    def _families_or_one_model(self) -> ExperimentConfig:
        if not self.families:
            return self
        if "model" in self.model_fields_set or {"strategy", "params"} & self.transfer.model_fields_set:
            raise ValueError(
                "give either [[families]] or [model] with a [transfer] strategy, not both "
                "([transfer.guard] applies to every family)"
            )
        if self.search is not None:
            raise ValueError("[search] tunes one model; remove it or run each family as its own experiment")
        names = [n for f in self.families for n in (f.name, f.transfer_name) if n is not None]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"families name the models {repeated} twice; give each family its own label")
        return self


def apply_overrides(document: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``document`` with ``KEY=VALUE`` overrides applied (``data.max_users=200``,
    ``search.n_trials=2``, ``model.params.optim.epochs=5``); a value is read as TOML (numbers,
    booleans, arrays, inline tables, quoted strings) and as a plain string when it is not TOML."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ExperimentFileError(f"--set {override!r}: write KEY=VALUE, e.g. data.max_users=200")
        try:
            value = tomllib.loads(f"value = {raw.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        *parents, leaf = key.strip().split(".")
        table = document
        for part in parents:
            child = table.setdefault(part, {})
            if not isinstance(child, dict):
                raise ExperimentFileError(f"--set {override!r}: {part!r} is not a table in the file")
            table = child
        table[leaf] = value
    return document


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read and validate an experiment TOML file; errors name the file and the bad keys.

    ``overrides`` are ``KEY=VALUE`` strings applied before validation (see :func:`apply_overrides`;
    the CLI's ``--set``)."""
    path = Path(path)
    if not path.is_file():
        raise ExperimentFileError(f"experiment file {path} does not exist")
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ExperimentFileError(f"{path} is not valid TOML: {error}") from error
    apply_overrides(document, overrides or [])
    try:
        config = ExperimentConfig.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in error.errors()
        )
        raise ExperimentFileError(f"{path}: {problems}") from error
    if config.data.bundle is not None and not config.data.bundle.is_absolute():
        config.data.bundle = (path.parent / config.data.bundle).resolve()
    config.transfer.sources = [
        source if source.is_absolute() else (path.parent / source).resolve()
        for source in config.transfer.sources
    ]
    return config
