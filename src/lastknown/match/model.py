"""The Fellegi–Sunter model: comparisons, training from the master's own labels, JSON.

The master labels itself: the same TIN in different tax years is the same person,
so ``m`` (how often a true match lands in each comparison level) is estimated from
same-TIN cross-year pairs (real moves, name changes), and ``u`` (how often a
non-match does) from random pairs. No request data is needed. Splink does the
estimation and the scoring; this module only says *what* is compared.

Requests vary in ways the master rarely does (initials, nicknames, typos made by
the requester, other romanisations), so those levels get a documented prior on ``m``
(:data:`REQUEST_LEVELS`), used as a floor — never on an exact level. A master without
same-TIN pairs across years (one tax year) cannot teach m at all: then every level's m
comes from :data:`PRIOR_M`.

>>> [c["output_column_name"] for c in comparisons()][:2]
['first_name', 'surname']
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lastknown.engines.base import Engine, SqlStep
from lastknown.errors import ConfigError, PipelineError
from lastknown.normalize.phonetic import SEX_SHARE

#: Columns every scored record carries (request side and master side alike).
COMPARE_COLUMNS: tuple[str, ...] = (
    "first_n", "first_initial", "first_groups", "first_ph", "first_sex", "first_known",
    "middle_n", "middle_initial", "surname_tokens", "surname_n", "surname_ph", "suffix_n",
    "house_number", "predir", "street_name", "street_type", "street_line", "unit_n", "zip5",
    "city_n",
    "state_n",
)
#: Comparisons that describe the name; their weights form the "name weight".
NAME_COMPARISONS: tuple[str, ...] = ("first_name", "surname", "middle_name", "suffix")
ADDRESS_COMPARISONS: tuple[str, ...] = ("house_number", "street_name", "unit", "zip5", "city")

#: Highest m learning from requests may give a request-side level: a requester may be
#: taken to write a true match this way (a nickname, a misspelt street …) for at most one
#: row in four (``match/learn.py``).
REQUEST_LEVEL_MAX = 0.25
#: (comparison, level label) → (prior m, lower bound, upper bound) for the levels that
#: describe how a *requester* writes a true match. The master cannot show them (a
#: taxpayer writes their own name the same way every year), so training floors m at the
#: prior (never on an exact level; an observed m above the prior is kept). Priors of the
#: levels that existed before were measured on labelled request/record pairs of synth
#: seed 1 (12,000 true pairs, observed rates rounded down — docs/MATCHING.md); the
#: phonetic and typo levels start at 0.01 (typos and respellings are among a requester's
#: commoner errors, but no synth rate is trusted for them). The bounds are what learning
#: from requests (``match/learn.py``) may move m within: a quarter of the prior up to
#: :data:`REQUEST_LEVEL_MAX`. Candidate pruning treats a level as evidence when its
#: *upper bound* exceeds u, so learning never needs a pruned pair. Labels are stable:
#: other modules and saved estimates refer to them.
REQUEST_LEVELS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("first_name", "nickname"): (0.04, 0.01, REQUEST_LEVEL_MAX),  # observed 0.043: MIKE/MIGUEL
    ("first_name", "phonetic"): (0.01, 0.0025, REQUEST_LEVEL_MAX),  # another romanisation
    ("first_name", "typo"): (0.01, 0.0025, REQUEST_LEVEL_MAX),  # one or two keying errors
    ("first_name", "other name"): (0.001, 0.00025, 0.001),  # never evidence: NOT_EVIDENCE_FOR
    ("first_name", "initial"): (0.005, 0.00125, REQUEST_LEVEL_MAX),
    ("surname", "shared token"): (0.08, 0.02, REQUEST_LEVEL_MAX),  # observed 0.093
    ("surname", "phonetic"): (0.01, 0.0025, REQUEST_LEVEL_MAX),
    ("surname", "similar"): (0.01, 0.0025, REQUEST_LEVEL_MAX),
    ("middle_name", "initial"): (0.15, 0.0375, REQUEST_LEVEL_MAX),  # observed 0.196
    ("suffix", "one missing"): (0.01, 0.0025, REQUEST_LEVEL_MAX),
    ("street_name", "similar"): (0.02, 0.005, REQUEST_LEVEL_MAX),  # observed 0.021
    ("unit", "one missing"): (0.01, 0.0025, REQUEST_LEVEL_MAX),
    ("zip5", "one digit"): (0.01, 0.0025, REQUEST_LEVEL_MAX),
    ("city", "similar"): (0.01, 0.0025, REQUEST_LEVEL_MAX),
}
#: Levels that may never count *for* a match: their m is capped at their u (weight ≤ 0).
#: A close but different given name whose spelling is itself a known given name was never
#: a requester's typo among seed 1's 12,000 true pairs, but was a housemate (RONALD asked,
#: RONDA files there; DAVIDA/DAVID) in 2 of the 3 false disclosures on seed 2.
NOT_EVIDENCE_FOR: frozenset[tuple[str, str]] = frozenset({("first_name", "other name")})


#: Below this many same-TIN record pairs the master cannot teach m (:func:`train_model`).
MIN_LABEL_PAIRS = 1_000
#: Every level's m when the master cannot teach it: the model trained on synth seed 1
#: (200k persons, 6 tax years; 614k same-TIN pairs), to two digits — except the name
#: "different" levels: synth never changes a name across years (m ≈ 1e-6), real masters
#: do (marriage, corrections), so they get 0.001. Request-side levels are then floored at
#: their :data:`REQUEST_LEVELS` prior as usual, and m renormalised. Address levels reflect
#: moves across years, which is what a same-TIN pair is.
PRIOR_M: dict[str, dict[str, float]] = {
    "first_name": {"exact": 0.94, "nickname": 0.038, "phonetic": 0.0094, "typo": 0.0094,
                   "other name": 0.00094, "initial": 0.0047, "different": 0.001},
    "surname": {"exact": 0.91, "shared token": 0.073, "phonetic": 0.0091, "similar": 0.0091,
                "different": 0.001},
    "middle_name": {"exact": 0.87, "initial": 0.13, "different": 0.001},
    "suffix": {"same": 0.036, "both none": 0.95, "one missing": 0.0099, "different": 0.001},
    "house_number": {"exact": 0.75, "different": 0.25},
    "street_name": {"exact": 0.73, "similar": 0.02, "different": 0.25},
    "unit": {"same": 0.24, "both none": 0.6, "one missing": 0.13, "different": 0.028},
    "zip5": {"exact": 0.76, "one digit": 0.01, "different": 0.23},
    "city": {"exact": 0.91, "similar": 0.0099, "different": 0.081},
}


#: (comparison, level) → the level whose u it takes after training. The master's own
#: given names are nearly all known names, so random master pairs almost never land in
#: "typo" (u ≈ 0: an unbounded weight); a requester's misspelling is about as close to a
#: random filer's name as one known name is to another ("other name", u ≈ 0.2 % on
#: synth seed 1).
U_LIKE: dict[tuple[str, str], str] = {("first_name", "typo"): "other name"}


def request_level_upper(comparison: str, label: str) -> float | None:
    """The highest m learning may give a request-side level (None: not request-side)."""
    bounds = REQUEST_LEVELS.get((comparison, label))
    if bounds is None or (comparison, label) in NOT_EVIDENCE_FOR:
        return None
    return bounds[2]


#: Given names not of opposite sexes: the shares of men among their bearers differ by less
#: than :data:`~lastknown.normalize.phonetic.SEX_SHARE` (true when either is not listed).
SAME_SEX = f'coalesce(abs("first_sex_l" - "first_sex_r") < {SEX_SHARE}, true)'
#: Equal phonetic keys, and spellings not far apart (Jaro-Winkler ≥ 0.75): the key alone
#: joined VONNA and WAYNE (W/V, vowels) in a false disclosure on synth seed 4; respellings
#: across romanisations mostly keep ≥ 0.78 (YOUSSEF/YUSUF 0.81, JEONG/JUNG 0.81,
#: PHILLIP/FILIP 0.79; YURIY/IURII, 0.73, is lost). Keys one edit apart were tried
#: (OLEKSANDR/ALEXANDER) and dropped: on synth seed 1 they joined 1.1 % of random
#: same-sex pairs (DOROTHY/TERESA, DONALD/RONALD), eight times what equal keys join
#: (0.13 %), so the level weighed < 0.
FIRST_PHONETIC = ('(length("first_n_l") > 1 AND length("first_n_r") > 1 AND '
                  '"first_ph_l" = "first_ph_r" AND '
                  'jaro_winkler_similarity("first_n_l", "first_n_r") >= 0.75)')
#: One keying error in 4+ letters, two in 7+ (transpositions count once).
#: (The length test is implied by the edit distance; it only spares the engine the edit
#: on most pairs.)
FIRST_TYPO = ('(length("first_n_l") >= 4 AND length("first_n_r") >= 4 AND '
              'abs(length("first_n_l") - length("first_n_r")) <= 2 AND '
              'damerau_levenshtein("first_n_l", "first_n_r") <= CASE WHEN '
              'length("first_n_l") >= 7 AND length("first_n_r") >= 7 THEN 2 ELSE 1 END)')


#: The request's given name cut short (a fixed-width export: JAC for JACOB), 3+ letters;
#: only for a spelling that is not itself a known name (the typo level's condition), and
#: the rival check keeps JAC at an address where JACOB and JACK both file `A`.
FIRST_CUT = ('(length("first_n_l") >= 3 AND length("first_n_r") > length("first_n_l") AND '
             'starts_with("first_n_r", "first_n_l"))')


def ocr_fold_sql(expr: str) -> str:
    """Letters a scanner reads as others (rn/m, cl/d, vv/w) folded, before a one-edit
    test (surnames, street names): COMRNINGS is CUMMINGS with one typo, MEACLOW MEADOW."""
    return f"replace(replace(replace({expr}, 'RN', 'M'), 'CL', 'D'), 'VV', 'W')"


_SURNAME_FOLDED = ", ".join(ocr_fold_sql(f'"surname_n_{side}"') for side in "lr")


def _first_jaro(threshold: float) -> str:
    """Given names of 3+ letters with Jaro-Winkler similarity ≥ ``threshold``."""
    return ('(length("first_n_l") > 2 AND length("first_n_r") > 2 AND '
            f'jaro_winkler_similarity("first_n_l", "first_n_r") >= {threshold})')


def _level(label: str, sql: str, *, null: bool = False, tf: str | None = None) -> dict[str, Any]:
    level: dict[str, Any] = {"sql_condition": sql, "label_for_charts": label}
    if null:
        level["is_null_level"] = True
    if tf:
        level["tf_adjustment_column"] = tf
        level["tf_adjustment_weight"] = 1.0
    return level


def _null(*cols: str) -> str:
    return " OR ".join(f'"{c}_l" IS NULL OR "{c}_r" IS NULL' for c in cols)


def comparisons() -> list[dict[str, Any]]:
    """The comparison levels, best agreement first, as Splink settings dicts."""
    return [
        {"output_column_name": "first_name", "comparison_levels": [
            _level("null", _null("first_n"), null=True),
            _level("exact", '"first_n_l" = "first_n_r"', tf="first_n"),
            # one name is a nickname *of the other* (BILL~WILLIAM); two nicknames of one
            # formal name are not (LEE~ROY, both LEROY: a false disclosure on synth seed 1);
            # nickname lists also join names across sexes (LOUIS/LOUISE): never those
            _level("nickname", f'{SAME_SEX} AND (list_contains("first_groups_r", "first_n_l") '
                   'OR list_contains("first_groups_l", "first_n_r"))'),
            # a respelling or a keying error, unless the request's spelling is itself a known
            # given name (RONALD asked, RONDA files there; ELIZABET asked, ELIZABETH files:
            # a different person → "other name")
            _level("phonetic", f'{SAME_SEX} AND NOT "first_known_l" AND {FIRST_PHONETIC}'),
            _level("typo", f'{SAME_SEX} AND NOT "first_known_l" AND '
                   f"({FIRST_TYPO} OR {_first_jaro(0.92)} OR {FIRST_CUT})"),
            _level("other name", f"{FIRST_PHONETIC} OR {FIRST_TYPO} OR {_first_jaro(0.9)}"),
            _level("initial", '(length("first_n_l") = 1 OR length("first_n_r") = 1) AND '
                   '"first_initial_l" = "first_initial_r"'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "surname", "comparison_levels": [
            _level("null", _null("surname_n"), null=True),
            _level("exact", '"surname_n_l" = "surname_n_r"', tf="surname_n"),
            _level("shared token", 'list_has_any("surname_tokens_l", "surname_tokens_r")'),
            # a token's key of 2+ letters in common (SUH/SEO, BAK/PARK); one-letter keys
            # (OH, YU, O) say too little
            _level("phonetic", 'list_has_any(list_filter("surname_ph_l", lambda k: '
                   'length(k) > 1), "surname_ph_r")'),
            # one keying error, or one surname cut short (a fixed-width export: SAUN for
            # SAUNDERS) to 4+ letters
            _level("similar",
                   'jaro_winkler_similarity("surname_n_l", "surname_n_r") >= 0.92 OR '
                   '(length("surname_n_l") >= 4 AND length("surname_n_r") >= 4 AND '
                   '(starts_with("surname_n_l", "surname_n_r") OR '
                   'starts_with("surname_n_r", "surname_n_l") OR '
                   '(abs(length("surname_n_l") - length("surname_n_r")) <= 2 AND '
                   f"damerau_levenshtein({_SURNAME_FOLDED}) <= 1)))"),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "middle_name", "comparison_levels": [
            _level("null", _null("middle_initial"), null=True),
            _level("exact", '"middle_n_l" = "middle_n_r"'),
            _level("initial", '"middle_initial_l" = "middle_initial_r"'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "suffix", "comparison_levels": [
            _level("same", '"suffix_n_l" = "suffix_n_r"'),
            _level("both none", '"suffix_n_l" IS NULL AND "suffix_n_r" IS NULL'),
            _level("one missing", '"suffix_n_l" IS NULL OR "suffix_n_r" IS NULL'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "house_number", "comparison_levels": [
            _level("null", _null("house_number"), null=True),
            _level("exact", '"house_number_l" = "house_number_r"'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "street_name", "comparison_levels": [
            _level("null", _null("street_name"), null=True),
            _level("exact", '"street_name_l" = "street_name_r"'),
            _level("similar", 'damerau_levenshtein("street_name_l", "street_name_r") <= 1 OR '
                   'jaro_winkler_similarity("street_name_l", "street_name_r") >= 0.93'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "unit", "comparison_levels": [
            _level("same", '"unit_n_l" = "unit_n_r"'),
            _level("both none", '"unit_n_l" IS NULL AND "unit_n_r" IS NULL'),
            _level("one missing", '"unit_n_l" IS NULL OR "unit_n_r" IS NULL'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "zip5", "comparison_levels": [
            _level("null", _null("zip5"), null=True),
            _level("exact", '"zip5_l" = "zip5_r"'),
            # one digit keyed wrong (never a transposition of two: that is another ZIP)
            _level("one digit", 'length("zip5_l") = 5 AND length("zip5_r") = 5 AND '
                   'hamming("zip5_l", "zip5_r") = 1'),
            _level("different", "ELSE"),
        ]},
        {"output_column_name": "city", "comparison_levels": [
            _level("null", _null("city_n"), null=True),
            _level("exact", '"city_n_l" = "city_n_r"'),
            _level("similar", 'jaro_winkler_similarity("city_n_l", "city_n_r") >= 0.9'),
            _level("different", "ELSE"),
        ]},
    ]


def base_settings(*, prior: float = 0.001) -> dict[str, Any]:
    """Splink settings for an untrained model."""
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "probability_two_random_records_match": prior,
        "comparisons": comparisons(),
        "blocking_rules_to_generate_predictions": [],
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,
        "additional_columns_to_retain": ["block_key"],
    }


@contextmanager
def quiet_splink() -> Iterator[None]:
    """Keep Splink's advice (e.g. "no null level for suffix": by design) out of the output."""
    logger = logging.getLogger("splink")
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _apply_m_floors(model: dict[str, Any]) -> None:
    """Floor request-side levels at their prior, cap :data:`NOT_EVIDENCE_FOR` at u,
    give unseen levels a tiny m, renormalise m per comparison."""
    for comp in model["comparisons"]:
        by_label = {lv.get("label_for_charts"): lv for lv in comp["comparison_levels"]}
        for (name, label), like in U_LIKE.items():
            if name == comp["output_column_name"] and label in by_label and like in by_label:
                u_like = by_label[like].get("u_probability")
                if isinstance(u_like, int | float):
                    u = by_label[label].get("u_probability")
                    by_label[label]["u_probability"] = max(
                        u if isinstance(u, int | float) else 0.0, u_like)
        for level in comp["comparison_levels"]:
            bounds = REQUEST_LEVELS.get((comp["output_column_name"],
                                         level.get("label_for_charts", "")))
            if level.get("is_null_level"):
                continue
            m = level.get("m_probability")
            if not isinstance(m, int | float):
                m = None
            if bounds is not None and (m is None or m < bounds[0]):
                level["m_probability"] = bounds[0]
            elif m is None:
                level["m_probability"] = 1e-6  # never seen among true matches
            u = level.get("u_probability")
            if not isinstance(u, int | float) or u <= 0:
                level["u_probability"] = 1e-6
        for level in comp["comparison_levels"]:
            key = (comp["output_column_name"], level.get("label_for_charts", ""))
            if key in NOT_EVIDENCE_FOR and not level.get("is_null_level"):
                level["m_probability"] = min(level["m_probability"], level["u_probability"])
        # m is a distribution over the levels: raising a floor lowers the others' share
        levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
        total = sum(float(lv["m_probability"]) for lv in levels)
        for lv in levels:
            lv["m_probability"] = float(lv["m_probability"]) / total


def label_pair_count(engine: Engine, training_table: str) -> int:
    """Same-TIN record pairs in ``training_table`` (what m is learned from)."""
    rows = engine.fetchall(f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM "
                           f"(SELECT count(*) AS n FROM {training_table} GROUP BY tin)")
    return int(rows[0][0])


def _apply_prior_m(model: dict[str, Any]) -> None:
    """Every level's m from :data:`PRIOR_M` (a master that cannot teach m)."""
    for comp in model["comparisons"]:
        priors = PRIOR_M[comp["output_column_name"]]
        for level in comp["comparison_levels"]:
            if not level.get("is_null_level"):
                level["m_probability"] = priors[level["label_for_charts"]]


def train_model(engine: Engine, *, training_table: str, seed: int = 42,
                max_pairs: float = 2e6, household_table: str | None = None) -> dict[str, Any]:
    """Estimate u on every pair of a fixed sample of ``training_table`` (the first
    records by md5, :func:`u_sample_steps`: the same u on every engine; ``seed`` is
    recorded, Splink draws nothing at random) and m from its same-TIN pairs.

    ``training_table`` has ``unique_id``, ``tin``, ``block_key`` and :data:`COMPARE_COLUMNS`.
    With fewer than :data:`MIN_LABEL_PAIRS` same-TIN pairs (a master of one tax year),
    m comes from :data:`PRIOR_M` instead; ``lastknown.training`` says which.
    ``household_table`` (same columns plus ``addr_key``) gives the name comparisons' u
    among different TINs at one address (:func:`household_section`).
    Returns the model as a dict (Splink's JSON) with a ``lastknown`` section.
    """
    from splink import Linker

    pairs = label_pair_count(engine, training_table)
    from_labels = pairs >= MIN_LABEL_PAIRS
    db_api = engine.splink_db_api()
    with quiet_splink():
        model = _train(db_api, Linker, training_table=training_table, seed=seed,
                       max_pairs=max_pairs, learn_m=from_labels, engine=engine)
    if not from_labels:
        _apply_prior_m(model)
    _apply_m_floors(model)
    model.pop("linker_uid", None)
    training = {"m_source": "same-TIN pairs" if from_labels else "priors",
                "label_pairs": pairs, "min_label_pairs": MIN_LABEL_PAIRS}
    lastknown: dict[str, Any] = {"seed": seed, "training": training}
    if household_table is not None:
        with quiet_splink():
            counts = _household_level_counts(engine, db_api, Linker, model, household_table)
        lastknown["household"] = household_section(model, counts)
    digest = hashlib.sha256(json.dumps([model["comparisons"], lastknown.get("household")],
                                       sort_keys=True).encode())
    model["lastknown"] = {"model_id": "lk-" + digest.hexdigest()[:12], **lastknown}
    return model


def training_summary(model: dict[str, Any]) -> str:
    """One line: where the model's m came from (``master index`` prints it)."""
    training = model.get("lastknown", {}).get("training")
    if not training:
        return "m from same-TIN pairs (an index built before this was recorded)"
    if training["m_source"] == "priors":
        return (f"m from the documented priors: only {training['label_pairs']:,} pairs of "
                f"returns by one TIN (fewer than {training['min_label_pairs']:,}; a master "
                "of one tax year has almost none), too few to learn from; u from the master")
    return f"m from {training['label_pairs']:,} pairs of returns by one TIN"


#: Splink's comparison vector value of the suffix level "different" (Sr vs Jr).
SUFFIX_DIFFERENT = 0

#: Smoothing of the household level counts (Jeffreys: half a pair per level), so a level
#: never seen among housemates gets a small u rather than 0 (an infinite weight).
HOUSEHOLD_SMOOTHING = 0.5


def gammas(comp: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Splink's comparison vector value of each non-null level (best level highest)."""
    levels = [lv for lv in comp["comparison_levels"] if not lv.get("is_null_level")]
    return [(len(levels) - 1 - i, lv) for i, lv in enumerate(levels)]


def _household_level_counts(engine: Engine, db_api: Any, linker_class: Any,
                            model: dict[str, Any], table: str) -> dict[str, dict[int, int]]:
    """How often each name level occurs among different-TIN record pairs at one address."""
    try:
        settings = {k: v for k, v in model.items() if k != "lastknown"}
        settings["retain_intermediate_calculation_columns"] = True
        settings["blocking_rules_to_generate_predictions"] = [
            "l.addr_key = r.addr_key AND l.tin <> r.tin"]
        linker = linker_class(db_api.register(table, table_name=f"{table}_sdf"),
                              engine.splink_settings(settings), log_level=None)
        physical = linker.inference.predict(warning_mode="never").physical_name
    except Exception as exc:  # Splink raises many types; any failure here is ours
        raise PipelineError(f"estimating household name frequencies failed: {exc}") from exc
    counts: dict[str, dict[int, int]] = {}
    for name in NAME_COMPARISONS:
        # Father and son (Sr/Jr) share given and middle name; among pairs whose suffixes do
        # not contradict, the other name levels are what an unsuffixed rival looks like.
        told_apart = "" if name == "suffix" else f' AND "gamma_suffix" <> {SUFFIX_DIFFERENT}'
        rows = engine.fetchall(f'SELECT "gamma_{name}", count(*) FROM {physical} '
                               f'WHERE "gamma_{name}" >= 0{told_apart} GROUP BY 1')
        counts[name] = {int(g): int(n) for g, n in rows}
    linker.table_management.delete_tables_created_by_splink_from_db()
    return counts


def household_section(model: dict[str, Any],
                      counts: dict[str, dict[int, int]]) -> dict[str, Any]:
    """Name weights (bits) for a pair whose address is confirmed.

    Once the address is confirmed, the rivals of the asked-for person are not random
    people but the other taxpayers who filed from that address (housemates: a shared
    surname, often a similar given name). So each name level weighs log2(m / u) with
    m from the trained model and u counted on different-TIN pairs at one address of
    the master. Levels in :data:`NOT_EVIDENCE_FOR` weigh at most 0 here too.

    >>> m = {"comparisons": [{"output_column_name": "suffix", "comparison_levels": [
    ...     {"label_for_charts": "same", "m_probability": 0.5},
    ...     {"label_for_charts": "different", "m_probability": 0.5}]}]}
    >>> household_section(m, {"suffix": {1: 1, 0: 3}})["weights"]["suffix"]  # u = 1.5/5, 3.5/5
    {'1': 0.737, '0': -0.485}
    """
    weights: dict[str, dict[str, float]] = {}
    for comp in model["comparisons"]:
        name = comp["output_column_name"]
        if name not in NAME_COMPARISONS or name not in counts:
            continue
        levels = gammas(comp)
        total = sum(counts[name].values()) + HOUSEHOLD_SMOOTHING * len(levels)
        weights[name] = {}
        for gamma, level in levels:
            u = (counts[name].get(gamma, 0) + HOUSEHOLD_SMOOTHING) / total
            m = max(float(level.get("m_probability") or 0.0), 1e-6)
            w = math.log2(m / u)
            if (name, level.get("label_for_charts", "")) in NOT_EVIDENCE_FOR:
                w = min(w, 0.0)
            weights[name][str(gamma)] = round(w, 3)
    pairs = {n: sum(c.values()) for n, c in counts.items()}
    return {"weights": weights, "pairs": max(pairs.values(), default=0)}


def household_weight_sql(model: dict[str, Any]) -> str:
    """SQL over Splink's ``gamma_<name>`` columns: log2 of the names' likelihood ratio
    *given the address is confirmed* (this person vs another resident of the address).
    NULL when the model has no household section (an index built before it existed).
    """
    section = model.get("lastknown", {}).get("household")
    if not section:
        return "CAST(NULL AS DOUBLE)"
    terms = ["0.0"]
    for name, by_gamma in section["weights"].items():
        cases = " ".join(f"WHEN {int(g)} THEN {float(w)!r}" for g, w in by_gamma.items())
        terms.append(f'(CASE "gamma_{name}" {cases} ELSE 0.0 END)')
    return "(" + " + ".join(terms) + ")"


def u_sample_steps(training_table: str, max_pairs: float) -> list[SqlStep]:
    """The rows whose every pair gives u: the first of ``training_table`` by the md5 of
    their ``unique_id``, as many as make about ``max_pairs`` pairs. Splink's own random
    sample hashes with the engine's ``hash()``, which differs between DuckDB and Spark;
    given no more rows than it would sample, Splink takes them all, so every engine
    learns the same u.

    >>> print(u_sample_steps("lk_training", 2e6)[0].sql)
    SELECT * FROM lk_training ORDER BY md5(CAST(unique_id AS VARCHAR)) LIMIT 2000
    """
    # Splink samples 0.5 * (sqrt(8 * max_pairs + 1) + 1) rows: n(n - 1) / 2 = max_pairs
    rows = int(0.5 * (math.sqrt(8 * max_pairs + 1) + 1))
    return [SqlStep(sql=f"SELECT * FROM {training_table} ORDER BY md5(CAST(unique_id AS "
                        f"VARCHAR)) LIMIT {rows}", output_table_name=f"{training_table}_u")]


def _train(db_api: Any, linker_class: Any, *, training_table: str, seed: int,
           max_pairs: float, learn_m: bool = True, engine: Engine) -> dict[str, Any]:
    base = base_settings()
    [u_step] = u_sample_steps(training_table, max_pairs)
    try:
        engine.run_steps([u_step])
        linker = linker_class(db_api.register(u_step.output_table_name),
                              engine.splink_settings(base), log_level=None)
        # every pair of the sample, in one chunk: Splink's early stop takes the pairs of
        # the chunks its hash deals first, which differ by engine
        linker.training.estimate_u_using_random_sampling(
            max_pairs=max_pairs, seed=seed, min_count_per_level=None, num_chunks=1)
        model = stored_form(linker.misc.save_model_to_json(), base)
        if learn_m:
            model.pop("linker_uid", None)
            linker = linker_class(db_api.register(training_table),
                                  engine.splink_settings(model), log_level=None)
            linker.training.estimate_m_from_label_column("tin")
            model = stored_form(linker.misc.save_model_to_json(), base)
    except Exception as exc:  # Splink raises many types; any failure here is ours
        raise PipelineError(f"training the match model failed: {exc}") from exc
    engine.execute(f"DROP TABLE IF EXISTS {u_step.output_table_name}")
    return model


def stored_form(model: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The trained ``model`` with its SQL as written in ``base`` (DuckDB's dialect, what a
    model stores whichever engine trained it: ``Engine.splink_settings`` renders it)."""
    for comp, written in zip(model["comparisons"], base["comparisons"], strict=True):
        for level, spelled in zip(comp["comparison_levels"], written["comparison_levels"],
                                  strict=True):
            level["sql_condition"] = spelled["sql_condition"]
    model["sql_dialect"] = "duckdb"
    return model


def save_model(model: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(model, indent=2, sort_keys=True), encoding="utf-8")


def load_model(path: Path) -> dict[str, Any]:
    try:
        model: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read match model {path}: {exc}; rebuild the index with "
                          "`lastknown master index`") from exc
    if "lastknown" not in model or "comparisons" not in model:
        raise ConfigError(f"{path} is not a lastknown match model; rebuild the index")
    return model


def model_id(model: dict[str, Any]) -> str:
    return str(model["lastknown"]["model_id"])
