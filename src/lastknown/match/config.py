"""Matching thresholds and limits: one frozen config, loaded from TOML.

Every default is documented with the reason it has its value; docs/MATCHING.md
records the measurements they come from. A TOML file may override any field::

    # match.toml
    match_threshold = 0.995
    margin_weight = 8.0

>>> cfg = load_match_config(None)
>>> cfg.match_threshold
0.99
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from lastknown.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class MatchConfig:
    """Decision thresholds and search limits of the matcher."""

    #: Minimum match probability of the best TIN for `M` (and for `P`).
    match_threshold: float = 0.99
    #: Minimum name-only match weight (bits) of a TIN: names must agree on their own;
    #: address agreement can never make up for a disagreeing name.
    min_name_weight: float = 6.0
    #: A rival TIN whose name weight also passes ``min_name_weight`` and whose total
    #: weight is within this many bits of the best makes the row ambiguous (`A`).
    margin_weight: float = 6.0
    #: Odds that the person asked for is an unseen resident of a confirmed address (files
    #: nothing there) whose names agree like a filing housemate's would, against the filer
    #: the names point to: the unseen rival in the reported probability. Measured on synth
    #: seed 1's labelled requests (docs/MATCHING.md, Calibration); it never changes an outcome.
    unseen_resident_odds: float = 0.04
    #: Prior probability that a request and one blocked candidate record are the same
    #: person (Splink's λ at prediction time).
    prior_match_probability: float = 0.001
    #: Largest number of candidate records scored per request.
    comparison_budget: int = 300
    #: A blocking key shared by more master records than this is skipped for that
    #: request (and counted in a warning): it says too little to be worth comparing.
    block_limit: int = 2000
    #: Requests scored per chunk (bounded memory).
    chunk_size: int = 250_000

    def thresholds(self) -> dict[str, float]:
        """The decision thresholds, for ``summary.json``."""
        return {
            "match_threshold": self.match_threshold,
            "min_name_weight": self.min_name_weight,
            "margin_weight": self.margin_weight,
            "prior_match_probability": self.prior_match_probability,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_match_config(path: Path | None) -> MatchConfig:
    """Read a TOML file of overrides; ``None`` gives the defaults.

    Raises :class:`ConfigError` naming the file and the bad key.
    """
    if path is None:
        return MatchConfig()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read match config {path}: {exc}") from exc
    table = raw.get("match", raw)
    known = {f.name: f for f in fields(MatchConfig)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown key `{key}`; known keys: {', '.join(known)}")
        default = getattr(MatchConfig(), key)
        if isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{path}: `{key}` must be a positive whole number, got {value!r}")
        elif not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{path}: `{key}` must be a number, got {value!r}")
        values[key] = value
    cfg = MatchConfig(**values)
    if not 0 < cfg.match_threshold < 1 or not 0 < cfg.prior_match_probability < 1:
        raise ConfigError(f"{path}: match_threshold and prior_match_probability must lie "
                          "strictly between 0 and 1")
    return cfg
