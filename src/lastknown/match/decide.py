"""Decision rules and retrieval: what is disclosed, as engine-agnostic SQL.

Per request, candidate records are grouped by TIN. A TIN's weight is its best
record's Splink match weight; its name weight the best name-only weight over its
records (names change across years); it is *confirmed* when any of its records
passes :func:`address_confirmed_sql` against the supplied address.

Outcome of a request, in order:

* ``N`` — no candidate, or the best TIN's names do not agree on their own: on some
  record, name weight at least ``min_name_weight`` *and* given name and surname each
  evidence for (a weight above 0) — a rare surname alone never makes names agree;
* ``A`` — a rival TIN whose names also agree comes within ``margin_weight`` bits;
* ``M`` — probability ≥ ``match_threshold``, confirmed, and a return inside the
  requested tax periods (the most recent one is disclosed);
* ``P`` — as ``M`` but no return inside the requested periods;
* ``U`` — names agree but no return of the TIN confirms the supplied address;
* ``N`` — otherwise (names agree, address confirmed, probability too low).

The decision reads the model's own probability (``model_probability``, from the best
record's Splink weight). A record built only from quarantined master rows
(``disclosable`` false) never confirms an address, but its TIN still rivals and still
counts among the people at the address. The *reported* ``match_probability`` of a
confirmed TIN is the posterior among the people at that address:
``L / (ΣL_residents + unseen_resident_odds)``, with ``L = 2^household_weight`` the
names' likelihood ratio against a housemate
(:func:`lastknown.match.model.household_section`) and the sum over every candidate TIN
confirming the address; ``Σ(1 − match_probability)`` over `M` rows is the summary's
expected number of false disclosures. Other rows report the model's probability.
"""

from __future__ import annotations

from lastknown.engines.base import SqlStep
from lastknown.match.config import MatchConfig
from lastknown.match.learn import delta_sql
from lastknown.match.model import ADDRESS_COMPARISONS, NAME_COMPARISONS, ocr_fold_sql

#: A supplied street line (name and type word, no spaces) this long or longer that is the
#: start of a record's line is that line cut short; shorter ones (``OAK`` / ``OAKWOOD``)
#: name other streets too often.
TRUNCATED_LINE = 10


def address_confirmed_sql(q: str = "q", r: str = "r") -> str:
    """TRUE when record ``r``'s address confirms request ``q``'s supplied address, else FALSE.

    * house number equal — always; a line without a house number or street name never
      confirms;
    * street: name equal after USPS standardisation, or equal once spaces are ignored, or
      one typo (spaces ignored, scanner confusions folded: ``MEACLOW``) where the longer
      name has 5+ letters and no digits (``IVER`` for ``RIVER``, ``MONRP E`` for
      ``MONROE``; numbers are never typos: ``350 N`` and ``350 S`` are two grid streets);
      or, when one side's street type was not recognised (misspelt or split: ``Parker
      Tsreet``, ``Franc P Lace``, ``Hallen Clise``), the spelled-out lines
      (``street_line``: name + type word, no spaces) equal or one edit apart for lines of
      8+ letters; or the supplied line, without a street type, is the start of the
      record's and :data:`TRUNCATED_LINE` letters or longer (a fixed-width export cut it:
      ``3104 N Martin Luther`` for ``… King Jr Ln``);
    * place: zip5 equal, or city and state equal, or — state equal, city equal or one
      typo away, and the zip one digit off or missing (a keying error in each);
    * neither unit nor pre-directional contradicting (both present and different).

    Never NULL: unknown is not confirmed. The decision still needs the names to agree on
    their own before anything is disclosed, so a typo'd street or zip confirms only with
    an equal house number *and* agreeing names.

    Nested CASEs, so the engine runs the cheap equalities on every pair and the string
    edits only on the few pairs that reach them (most candidate pairs are neighbours);
    ``abs(length difference) <= 1`` is implied by one edit, so it only skips work.
    """
    city_typo = (f"({q}.city_n = {r}.city_n OR (length({q}.city_n) >= 5 "
                 f"AND abs(length({q}.city_n) - length({r}.city_n)) <= 1 "
                 f"AND damerau_levenshtein({q}.city_n, {r}.city_n) <= 1))")
    zip_digit = (f"({q}.zip5 IS NULL OR (length({q}.zip5) = 5 AND length({r}.zip5) = 5 "
                 f"AND hamming({q}.zip5, {r}.zip5) <= 1))")
    untyped = f"({q}.street_type IS NULL OR {r}.street_type IS NULL)"
    return f"""(CASE
        WHEN {q}.house_number IS NOT NULL AND {q}.house_number = {r}.house_number
             AND {q}.street_name IS NOT NULL AND {r}.street_name IS NOT NULL
             AND ({q}.zip5 = {r}.zip5 OR ({q}.city_n = {r}.city_n AND {q}.state_n = {r}.state_n)
                  OR ({q}.state_n = {r}.state_n AND {zip_digit} AND {city_typo}))
             AND NOT coalesce({q}.unit_n <> {r}.unit_n, false)
             AND NOT coalesce({q}.predir <> {r}.predir, false)
        THEN (CASE
            WHEN {q}.street_name = {r}.street_name THEN true
            WHEN replace({q}.street_name, ' ', '') = replace({r}.street_name, ' ', '') THEN true
            -- a number standing alone in a street name is never a typo (350 N / 350 S)
            WHEN regexp_matches({q}.street_name, '(^| )[0-9]+( |$)')
                 OR regexp_matches({r}.street_name, '(^| )[0-9]+( |$)') THEN false
            WHEN greatest(length({q}.street_name), length({r}.street_name)) >= 5
                 AND abs(length({q}.street_name) - length({r}.street_name)) <= 2
                 AND damerau_levenshtein({ocr_fold_sql(f"replace({q}.street_name, ' ', '')")},
                                         {ocr_fold_sql(f"replace({r}.street_name, ' ', '')")})
                     <= 1 THEN true
            WHEN {q}.street_line IS NULL OR {r}.street_line IS NULL THEN false
            WHEN {q}.street_line = {r}.street_line THEN true
            WHEN length({q}.street_line) >= 8
                 AND abs(length({q}.street_line) - length({r}.street_line)) <= 1
                 AND {untyped} AND damerau_levenshtein({q}.street_line, {r}.street_line) <= 1
            THEN true
            -- cut by a fixed-width export: 3104 N MARTIN LUTHER for ... KING JR LN
            WHEN {q}.street_type IS NULL AND length({q}.street_line) >= {TRUNCATED_LINE}
                 AND starts_with({r}.street_line, {q}.street_line) THEN true
            WHEN {q}.street_type IS NULL AND {r}.street_type IS NOT NULL
            THEN {_garbled_type_sql(q, r)}
            WHEN {r}.street_type IS NULL AND {q}.street_type IS NOT NULL
            THEN {_garbled_type_sql(r, q)}
            ELSE false END)
        ELSE false END)"""


def _garbled_type_sql(a: str, b: str) -> str:
    """``a``'s line is ``b``'s street name (or one typo in 5+ letters) followed by a short
    unrecognised token one edit from ``b``'s street type, abbreviated or spelled out
    (``Elm Age``, ``Aspen Avc``, ``WellingtonSt``, ``Ocean Cri``): a keyed-wrong type."""
    name = f"replace({b}.street_name, ' ', '')"
    head = f"left({a}.street_line, length({name}))"
    rest = f"substr({a}.street_line, length({name}) + 1)"
    word = f"substr({b}.street_line, length({name}) + 1)"
    return (f"(length({a}.street_line) - length({name}) BETWEEN 1 AND 6 "
            f"AND ({head} = {name} OR (length({name}) >= 5 "
            f"AND damerau_levenshtein({head}, {name}) <= 1)) "
            f"AND (damerau_levenshtein({rest}, {b}.street_type) <= 1 "
            f"OR damerau_levenshtein({rest}, {word}) <= 1))")


def outcome_steps(*, config: MatchConfig, requests: str, returns: str,
                  scored: str = "lk_scored",
                  deltas: dict[str, dict[int, float]] | None = None) -> list[SqlStep]:
    """From ``scored`` (``lk_scored``: the pair steps carry the address confirmation) to
    ``match_result`` and ``match_explanation``.

    ``scored`` has one row per pair: source_row, record_id, tin, swapped, match_weight,
    name_weight, mw_<comparison> …, household_weight, address_confirmed, disclosable (and
    ``gamma_<comparison>`` when ``deltas`` are given); ``requests`` is the normalised
    request table. ``deltas`` (bits per comparison and level, from ``match/learn.py``)
    re-weigh each pair by what the batch taught about the requester's errors.
    """
    c = config
    mw_cols = ", ".join(f"s.mw_{n}" for n in (*NAME_COMPARISONS, *ADDRESS_COMPARISONS))
    name_delta = " + ".join(delta_sql(deltas, n) for n in NAME_COMPARISONS)
    all_delta = " + ".join(delta_sql(deltas, n) for n in (*NAME_COMPARISONS,
                                                          *ADDRESS_COMPARISONS))
    reweighed = ", ".join(f"mw_{n} + {delta_sql(deltas, n)} AS mw_{n}"
                          for n in (*NAME_COMPARISONS, *ADDRESS_COMPARISONS))
    return [
        SqlStep(sql=f"""
            SELECT *, name_weight >= {c.min_name_weight} AND mw_first_name > 0
                      AND mw_surname > 0 AS names_agree
            FROM (SELECT source_row, record_id, tin, swapped, address_confirmed, disclosable,
                         match_weight + {all_delta} AS match_weight,
                         name_weight + {name_delta} AS name_weight,
                         household_weight + {name_delta} AS household_weight,
                         {reweighed}
                  FROM {scored})
        """, output_table_name="lk_scored_confirmed"),
        SqlStep(sql="""
            SELECT source_row, tin,
                   max(match_weight) AS tin_weight,
                   max(name_weight) AS tin_name_weight,
                   bool_or(address_confirmed AND disclosable) AS confirmed,
                   bool_or(names_agree) AS names_agree,
                   max(household_weight) FILTER (WHERE address_confirmed) AS household_weight,
                   arg_max(record_id, match_weight) AS best_record,
                   sum(pow(2.0, max(household_weight) FILTER (WHERE address_confirmed)))
                       OVER (PARTITION BY source_row) AS residents_lr,
                   row_number() OVER (PARTITION BY source_row ORDER BY
                       bool_or(names_agree) DESC,
                       max(match_weight) DESC, tin) AS tin_rank
            FROM lk_scored_confirmed GROUP BY source_row, tin
        """, output_table_name="lk_tin_scores"),
        SqlStep(sql=f"""
            SELECT b.source_row, b.tin, b.tin_weight, b.names_agree, b.confirmed,
                   b.best_record, b.household_weight,
                   CASE WHEN b.confirmed AND b.household_weight IS NOT NULL
                        THEN pow(2.0, b.household_weight)
                             / (b.residents_lr + {c.unseen_resident_odds})
                        ELSE 1.0 / (1.0 + pow(2.0, -b.tin_weight)) END AS probability,
                   1.0 / (1.0 + pow(2.0, -b.tin_weight)) AS model_probability,
                   (SELECT max(o.tin_weight) FROM lk_tin_scores AS o
                    WHERE o.source_row = b.source_row AND o.tin_rank > 1
                      AND o.names_agree) AS rival_weight
            FROM lk_tin_scores AS b WHERE b.tin_rank = 1
        """, output_table_name="lk_best"),
        SqlStep(sql=f"""
            SELECT q.source_row, q.request_row_id, q.tax_years, b.tin, b.probability,
                   b.model_probability,
                   b.best_record, b.tin_weight, b.rival_weight,
                   CASE
                     WHEN b.tin IS NULL OR NOT b.names_agree THEN 'N'
                     WHEN b.rival_weight IS NOT NULL
                          AND b.tin_weight - b.rival_weight < {c.margin_weight} THEN 'A'
                     WHEN b.confirmed AND b.model_probability >= {c.match_threshold} THEN
                          CASE WHEN EXISTS (SELECT 1 FROM {returns} AS t WHERE t.tin = b.tin
                                            AND list_contains(q.tax_years, t.tax_year))
                               THEN 'M' ELSE 'P' END
                     WHEN NOT b.confirmed THEN 'U'
                     ELSE 'N'
                   END AS outcome
            FROM {requests} AS q LEFT JOIN lk_best AS b ON b.source_row = q.source_row
        """, output_table_name="lk_decided"),
        SqlStep(sql=f"""
            SELECT d.source_row, t.tax_year, t.street, t.unit, t.city, t.state, t.zip
            FROM lk_decided AS d
            JOIN {returns} AS t ON t.tin = d.tin AND list_contains(d.tax_years, t.tax_year)
            WHERE d.outcome = 'M'
            QUALIFY row_number() OVER (PARTITION BY d.source_row ORDER BY t.tax_year DESC,
                t.received_date DESC NULLS LAST, t.street, t.unit, t.zip) = 1
        """, output_table_name="lk_disclosed"),
        SqlStep(sql=f"""
            SELECT d.source_row, d.request_row_id, d.outcome,
                   d.probability AS match_probability,
                   CASE WHEN d.outcome = 'M' THEN d.tin END AS tin,
                   CAST(x.tax_year AS INTEGER) AS address_tax_year,
                   x.street, x.unit, x.city, x.state, x.zip,
                   CASE d.outcome
                     WHEN 'M' THEN NULL
                     WHEN 'A' THEN 'two or more taxpayers match this row too closely to tell '
                                   || 'apart; review by hand'
                     WHEN 'U' THEN 'a taxpayer''s name agrees, but the supplied previous address '
                                   || 'matches none of their returns'
                     WHEN 'P' THEN 'matched and address confirmed, but no return was filed in '
                                   || 'the requested tax periods'
                     ELSE CASE WHEN d.tin IS NULL
                               THEN 'no taxpayer found with this name or address'
                               WHEN d.model_probability < {c.match_threshold}
                                    AND d.outcome = 'N' AND d.rival_weight IS NULL
                               THEN 'no taxpayer matches name and address with enough '
                                    || 'certainty'
                               ELSE 'no taxpayer''s name agrees with the request' END
                   END AS detail
            FROM lk_decided AS d LEFT JOIN lk_disclosed AS x ON x.source_row = d.source_row
        """, output_table_name="match_result"),
        SqlStep(sql=f"""
            SELECT d.source_row, d.request_row_id, d.outcome, ts.tin, ts.tin_rank,
                   s.record_id, s.match_weight,
                   1.0 / (1.0 + pow(2.0, -s.match_weight)) AS match_probability,
                   s.name_weight, {mw_cols}, s.address_confirmed, s.swapped AS name_swapped
            FROM lk_decided AS d
            JOIN lk_tin_scores AS ts ON ts.source_row = d.source_row AND ts.tin_rank <= 2
            JOIN lk_scored_confirmed AS s
              ON s.source_row = ts.source_row AND s.record_id = ts.best_record
            WHERE d.outcome IN ('M', 'A')
        """, output_table_name="match_explanation"),
    ]
