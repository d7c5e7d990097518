"""Learning the requester's errors from the batch itself (no truth needed).

The master shows how a *taxpayer* writes their own name and address year after year; it
cannot show how a *requester* writes them (typos, nicknames, initials, a misspelt street,
one wrong ZIP digit). Those rates differ from one requesting agency to the next, so they
are estimated from each batch's own candidate pairs by expectation maximisation with the
non-match side held fixed:

* **name levels** on pairs whose supplied address is confirmed: such a pair is either the
  person asked for or another resident of that address, so the non-match distribution is
  the household ``u`` the index counted among housemates (``model.json`` →
  ``lastknown.household``);
* **address levels** on pairs whose given name and surname agree exactly: such a pair is
  the person asked for or a namesake, so the non-match distribution is the model's random
  ``u``.

EM runs on the engine's *pattern counts* (pairs grouped by their comparison levels, a few
hundred rows at most), never on per-row Python objects. Each level's expected count among
matches is pooled per requesting agency across batches (:class:`EstimateStore`), on top of
a prior worth :data:`PRIOR_PAIRS` matches drawn from the model's own ``m``; so a 20-row
batch moves little and an agency's hundredth batch uses what the first 99 taught. Learned
values stay inside documented bounds (:func:`level_bounds`): a request-side level may
never reach more than its upper bound, and a level that is never evidence *for* a match
(a close but different given name) keeps ``m ≤ u`` — a batch cannot teach the model to
trust weak evidence. The result is a set of per-level weight changes (bits) the decision
adds to Splink's weights (:func:`delta_sql`).

Pairs drawn from 10 % matches (m = 0.9 agreeing on each of two fields) and 90 % others
(u = 0.05) are taken apart again:

>>> patterns = [((1, 1), 832.5), ((1, 0), 517.5), ((0, 1), 517.5), ((0, 0), 8132.5)]
>>> half = {1: 0.5, 0: 0.5}
>>> u = {1: 0.05, 0: 0.95}
>>> m, counts, lam = em(patterns, m={"a": half, "b": half}, u={"a": u, "b": u},
...                     comparisons=["a", "b"], lam=0.5)
>>> round(m["a"][1], 2), round(lam, 2), round(counts["a"][1], -1)
(0.9, 0.1, 900.0)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lastknown.engines.base import Engine, SqlStep
from lastknown.errors import ConfigError
from lastknown.match.model import (
    ADDRESS_COMPARISONS,
    NAME_COMPARISONS,
    NOT_EVIDENCE_FOR,
    REQUEST_LEVELS,
    gammas,
)
from lastknown.outdirs import write_json
from lastknown.request.batch import name_key

#: The store's folder under the deployment's archive.
ESTIMATES_FOLDER = "estimates"
#: The prior is worth this many matched pairs per comparison: a batch with fewer confirmed
#: matches than this moves a rate by less than half the way to what it shows.
PRIOR_PAIRS = 200.0
#: EM iterations (pattern counts converge in far fewer; each is a few hundred products).
EM_ITERATIONS = 40
#: Lowest and highest m any learned level may take.
M_MIN, M_MAX = 1e-6, 0.999

Pattern = tuple[tuple[int, ...], float]
Distributions = dict[str, dict[int, float]]


def level_bounds(comparison: str, label: str) -> tuple[float, float]:
    """The range a learned ``m`` of one level may take.

    Request-side levels lie within their bounds in
    :data:`~lastknown.match.model.REQUEST_LEVELS` (a quarter of the prior up to
    ``REQUEST_LEVEL_MAX``); every other level in ``[M_MIN, M_MAX]``.

    >>> level_bounds("first_name", "nickname")
    (0.01, 0.25)
    """
    bounds = REQUEST_LEVELS.get((comparison, label))
    if bounds is None:
        return M_MIN, M_MAX
    return bounds[1], bounds[2]


def em(patterns: Sequence[Pattern], *, m: Distributions, u: Distributions,
       comparisons: Sequence[str], lam: float = 0.5,
       iterations: int = EM_ITERATIONS) -> tuple[Distributions, Distributions, float]:
    """EM over pattern counts with ``u`` fixed: returns ``(m, expected match counts, λ)``.

    ``patterns`` are ``(gamma per comparison, number of pairs)``; a gamma of -1 (null)
    contributes nothing for its comparison. ``m`` and ``u`` map comparison → gamma →
    probability. The expected counts are Σ P(match | pattern) × n per level.
    """
    m = {c: dict(levels) for c, levels in m.items()}
    counts: Distributions = {c: {} for c in comparisons}
    total = sum(n for _, n in patterns)
    if total <= 0:
        return m, counts, lam
    for _ in range(iterations):
        counts = {c: {g: 0.0 for g in m[c]} for c in comparisons}
        matched = 0.0
        for gamma, n in patterns:
            log_m = math.log(lam)
            log_u = math.log(1.0 - lam)
            for c, g in zip(comparisons, gamma, strict=True):
                if g < 0:
                    continue
                log_m += math.log(max(m[c].get(g, M_MIN), M_MIN))
                log_u += math.log(max(u[c].get(g, M_MIN), M_MIN))
            p = 1.0 / (1.0 + math.exp(max(-700.0, min(700.0, log_u - log_m))))
            matched += p * n
            for c, g in zip(comparisons, gamma, strict=True):
                if g >= 0:
                    counts[c][g] = counts[c].get(g, 0.0) + p * n
        lam = min(max(matched / total, 1e-9), 1 - 1e-9)
        for c in comparisons:
            s = sum(counts[c].values())
            if s > 0:
                m[c] = {g: counts[c].get(g, 0.0) / s for g in m[c]}
    return m, counts, lam


@dataclass
class LevelCounts:
    """Expected number of matched pairs per comparison level (keyed by level label)."""

    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)

    def add(self, other: LevelCounts) -> LevelCounts:
        merged = {c: dict(levels) for c, levels in self.counts.items()}
        for c, levels in other.counts.items():
            for label, n in levels.items():
                merged.setdefault(c, {})[label] = merged.get(c, {}).get(label, 0.0) + n
        return LevelCounts(counts=merged, batches=[*self.batches, *other.batches])

    def as_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "batches": self.batches}


class EstimateStore:
    """Per-agency pooled level counts, one JSON file per agency under ``folder``.

    Written durably (:func:`~lastknown.outdirs.write_json`: fsynced temporary file,
    rename). An agency's key is its name casefolded, spaces collapsed; the file name is a
    digest of it (agency names carry any character).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, agency: str) -> Path:
        digest = hashlib.sha256(name_key(agency).encode()).hexdigest()[:16]
        return self.folder / f"agency-{digest}.json"

    def load(self, agency: str) -> LevelCounts:
        path = self._path(agency)
        if not path.is_file():
            return LevelCounts()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return LevelCounts(counts={str(c): {str(k): float(v) for k, v in lv.items()}
                                       for c, lv in raw["counts"].items()},
                               batches=[str(b) for b in raw.get("batches", [])])
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            raise ConfigError(f"cannot read learned estimates {path}: {exc}; move the file "
                              "away to start this agency from the prior again") from exc

    def save(self, agency: str, pooled: LevelCounts) -> Path:
        path = self._path(agency)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json(path, {"agency": name_key(agency), **pooled.as_json(),
                              "updated_at": datetime.now(UTC).isoformat(timespec="seconds")})
        except OSError as exc:
            raise ConfigError(f"cannot write learned estimates {path}: {exc.strerror}") from exc
        return path


def _levels(model: dict[str, Any], name: str) -> list[tuple[int, dict[str, Any]]]:
    comp = next(c for c in model["comparisons"] if c["output_column_name"] == name)
    return gammas(comp)


def _probabilities(model: dict[str, Any], names: Iterable[str], key: str) -> Distributions:
    out: Distributions = {}
    for name in names:
        out[name] = {g: max(float(lv.get(key) or 0.0), M_MIN) for g, lv in _levels(model, name)}
    return out


def household_u(model: dict[str, Any]) -> Distributions | None:
    """u of the name levels among housemates (from the index's household weights)."""
    section = model.get("lastknown", {}).get("household")
    if not section:
        return None
    m = _probabilities(model, NAME_COMPARISONS, "m_probability")
    u: Distributions = {}
    for name in NAME_COMPARISONS:
        weights = section["weights"].get(name, {})
        u[name] = {g: min(max(m[name][g] / 2.0 ** float(weights.get(str(g), 0.0)), M_MIN), 1.0)
                   for g in m[name]}
        total = sum(u[name].values())
        u[name] = {g: v / total for g, v in u[name].items()}
    return u


#: Gammas of the top ("exact") level of the given-name and surname comparisons: the
#: address levels are learned on pairs whose names agree this well.
def _exact_gamma(model: dict[str, Any], name: str) -> int:
    return max(g for g, _ in _levels(model, name))


def pattern_step(table: str, comparisons: Sequence[str], out: str) -> SqlStep:
    """``out(gamma_<c>…, n)``: the pairs of ``table`` grouped by their levels."""
    cols = ", ".join(f"gamma_{c}" for c in comparisons)
    return SqlStep(sql=f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY {cols}",
                   output_table_name=out)


def learning_steps(model: dict[str, Any], *, table: str) -> list[SqlStep]:
    """Pattern counts for the name pass and the address pass over ``table`` (scored pairs
    with ``address_confirmed`` and ``gamma_<comparison>`` columns).

    One pair per request and TIN — its best-weighted record, among the confirming ones for
    the name pass: a TIN's records at its *other* addresses are the same person, and
    counted as matches they would teach that addresses rarely agree.
    """
    exact = " AND ".join(f"gamma_{n} = {_exact_gamma(model, n)}"
                         for n in ("first_name", "surname"))

    def best(where: str, comparisons: Sequence[str], out: str) -> SqlStep:
        # only the levels the pass counts are carried (not every column of every pair)
        cols = ", ".join(f"gamma_{c}" for c in comparisons)
        return SqlStep(sql=f"""
            SELECT {cols} FROM (
                SELECT {cols}, row_number() OVER (PARTITION BY source_row, tin
                                                  ORDER BY match_weight DESC, record_id) AS k
                FROM {table} WHERE {where}) WHERE k = 1""", output_table_name=out)

    return [best("address_confirmed", NAME_COMPARISONS, "lk_learn_confirmed"),
            pattern_step("lk_learn_confirmed", NAME_COMPARISONS, "lk_learn_names"),
            best(exact, ADDRESS_COMPARISONS, "lk_learn_named"),
            pattern_step("lk_learn_named", ADDRESS_COMPARISONS, "lk_learn_address")]


@dataclass(frozen=True, kw_only=True)
class Learned:
    """What one batch taught and what answered it."""

    #: Expected matched pairs per level, this batch only (pooled into the store after).
    batch_counts: LevelCounts
    #: m per comparison and gamma after pooling, prior and bounds.
    m: Distributions
    #: Weight change per comparison and gamma (bits) against the index's model.
    deltas: dict[str, dict[int, float]]
    #: Confirmed pairs (name pass) and exact-name pairs (address pass) the batch offered.
    pairs: dict[str, int]
    estimates_id: str
    batches_pooled: int

    def summary(self, model: dict[str, Any]) -> dict[str, Any]:
        """For the internal record and the ledger's batch record."""
        m_by_label = {c: {_label(model, c, g): round(v, 6) for g, v in levels.items()}
                      for c, levels in self.m.items()}
        return {"estimates_id": self.estimates_id, "batches_pooled": self.batches_pooled,
                "pairs": self.pairs, "m": m_by_label}


def _label(model: dict[str, Any], comparison: str, gamma: int) -> str:
    return str(dict(_levels(model, comparison))[gamma].get("label_for_charts", gamma))


def _request_side(model: dict[str, Any], name: str, m: dict[int, float],
                  m_model: dict[int, float], u_random: dict[int, float]) -> dict[int, float]:
    """Only the request-side levels move (within their bounds); every other level keeps the
    model's ``m`` but the best one, which takes what is left (at least half its own).

    Levels that are evidence *against* a match (a different suffix, a different given
    name) never learn: a batch that lowered their penalty would weaken the rival check.
    """
    labels = {g: str(lv.get("label_for_charts", "")) for g, lv in _levels(model, name)}
    best = max(m_model)
    out = dict(m_model)
    for g, label in labels.items():
        if (name, label) not in REQUEST_LEVELS:
            continue
        low, high = level_bounds(name, label)
        if (name, label) in NOT_EVIDENCE_FOR:
            high = min(high, u_random[g])
        out[g] = min(max(m[g], low), high)
    rest = 1.0 - sum(v for g, v in out.items() if g != best)
    out[best] = max(rest, m_model[best] / 2)
    total = sum(out.values())
    return {g: v / total for g, v in out.items()}


def learn(engine: Engine, model: dict[str, Any], *, table: str, pooled: LevelCounts,
          batch_id: str) -> Learned:
    """Estimate this batch's request-side ``m`` and the weight changes that follow."""
    engine.run_steps(learning_steps(model, table=table))
    m_model = _probabilities(model, [*NAME_COMPARISONS, *ADDRESS_COMPARISONS], "m_probability")
    u_random = _probabilities(model, [*NAME_COMPARISONS, *ADDRESS_COMPARISONS], "u_probability")
    u_house = household_u(model) or {n: u_random[n] for n in NAME_COMPARISONS}
    batch = LevelCounts(batches=[batch_id])
    pairs: dict[str, int] = {}
    for label, comps, u in (("names", NAME_COMPARISONS, u_house),
                            ("address", ADDRESS_COMPARISONS, u_random)):
        rows = engine.fetchall(f"SELECT * FROM lk_learn_{label}")
        # sorted: the engine returns groups in any order, and EM's float sums (hence
        # estimates_id) must not depend on it
        patterns = sorted((tuple(int(g) if g is not None else -1 for g in r[:-1]), float(r[-1]))
                          for r in rows)
        pairs[label] = int(sum(n for _, n in patterns))
        _m, counts, _lam = em(patterns, m={c: m_model[c] for c in comps},
                              u={c: u[c] for c in comps}, comparisons=comps, lam=0.1)
        for c in comps:
            batch.counts[c] = {_label(model, c, g): n for g, n in counts[c].items()}
    total = pooled.add(batch)
    m_new: Distributions = {}
    deltas: dict[str, dict[int, float]] = {}
    for c, prior in m_model.items():
        observed = total.counts.get(c, {})
        alpha = {g: PRIOR_PAIRS * p + observed.get(_label(model, c, g), 0.0)
                 for g, p in prior.items()}
        s = sum(alpha.values())
        m_new[c] = _request_side(model, c, {g: a / s for g, a in alpha.items()}, prior,
                                 u_random[c])
        deltas[c] = {g: round(math.log2(m_new[c][g] / prior[g]), 4) for g in prior}
    digest = hashlib.sha256(json.dumps({c: sorted(v.items()) for c, v in m_new.items()},
                                       sort_keys=True).encode()).hexdigest()[:12]
    return Learned(batch_counts=batch, m=m_new, deltas=deltas, pairs=pairs,
                   estimates_id="est-" + digest, batches_pooled=len(total.batches) - 1)


def delta_sql(deltas: dict[str, dict[int, float]] | None, comparison: str) -> str:
    """SQL (bits) added to ``mw_<comparison>`` for a pair, from its ``gamma_<comparison>``."""
    levels = (deltas or {}).get(comparison, {})
    cases = " ".join(f"WHEN {int(g)} THEN {float(d)!r}" for g, d in sorted(levels.items())
                     if abs(d) > 1e-9)
    return f"(CASE gamma_{comparison} {cases} ELSE 0.0 END)" if cases else "0.0"
