"""Controlled settings: what changes who gets disclosed needs a recorded approval.

A matching setting (``--config MATCH.toml``) or a policy setting (``--policy``) that
differs from its documented default changes who is matched, who is refused and how
much may leave. Such a run is accepted only when the batch file approves exactly
those values, in the same ``[overrides]`` table that raises caps, with a reason and
an approver::

    [overrides]
    reason = "Stricter threshold for a batch with many shared surnames"
    approved_by = "Jane Roe, Chief Counsel"

    [overrides.match]
    match_threshold = 0.995

    [overrides.policy]
    period_days = 180

Every setting in force — defaults included, whole, not only a hash — is recorded in
the batch's ledger record (:func:`settings_record`).

>>> from lastknown.disclose.policy import Policy
>>> from lastknown.match.config import MatchConfig
>>> changed_settings(Policy(period_days=180), MatchConfig())
{'policy': {'period_days': 180}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from lastknown.errors import ErrorCollector
from lastknown.match.config import MatchConfig

if TYPE_CHECKING:
    from lastknown.disclose.policy import Policy

#: The ``[overrides]`` sub-tables that approve settings, and what each one covers.
SECTIONS: dict[str, str] = {"match": "matching setting", "policy": "policy setting"}
_NOT_SETTINGS = ("source", "source_sha256")
#: Settings recorded in force but never needing a batch's approval: they only make the
#: path stricter (a second person before release), never change who gets disclosed.
UNCONTROLLED = ("single_operator_release",)


def _plain(value: Any) -> Any:
    """A setting's value as JSON-ready data (tuples as lists, mappings as dicts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def policy_values(policy: Policy) -> dict[str, Any]:
    """Every policy setting in force, as plain data."""
    return {f.name: _plain(getattr(policy, f.name)) for f in fields(policy)
            if f.name not in _NOT_SETTINGS}


def settings_in_force(policy: Policy, match: MatchConfig) -> dict[str, dict[str, Any]]:
    """Every setting of both kinds, by section (what the ledger records)."""
    return {"match": _plain(match.as_dict()), "policy": policy_values(policy)}


def changed_settings(policy: Policy, match: MatchConfig) -> dict[str, dict[str, Any]]:
    """The settings that differ from their defaults, by section (empty sections left out)."""
    from lastknown.disclose.policy import Policy

    defaults = settings_in_force(Policy(), MatchConfig())
    changed: dict[str, dict[str, Any]] = {}
    for section, values in settings_in_force(policy, match).items():
        diff = {k: v for k, v in values.items()
                if v != defaults[section][k] and k not in UNCONTROLLED}
        if diff:
            changed[section] = diff
    return changed


def _toml(value: Any) -> str:
    """A value as TOML, for the lines an error message asks to add."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def approved_settings(overrides: Mapping[str, Any],
                      errors: ErrorCollector) -> dict[str, dict[str, Any]]:
    """The ``[overrides.match]`` and ``[overrides.policy]`` tables of a batch file."""
    approved: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        table = overrides.get(section)
        if table is None:
            continue
        if not isinstance(table, Mapping):
            errors.add(f"batch `overrides.{section}` must be a table: [overrides.{section}] "
                       "with one line per approved setting")
            continue
        approved[section] = _plain(table)
    return approved


def check_settings(changed: Mapping[str, Mapping[str, Any]],
                   approved: Mapping[str, Mapping[str, Any]], errors: ErrorCollector) -> None:
    """Every changed setting must be approved with its exact value, and nothing else.

    >>> errors = ErrorCollector()
    >>> check_settings({"match": {"match_threshold": 0.5}}, {}, errors)
    >>> print(errors.problems[0])  # doctest: +NORMALIZE_WHITESPACE
    matching setting match_threshold = 0.5 (default 0.99) changes who gets disclosed and is
    not approved: add to the batch file [overrides.match] match_threshold = 0.5, with
    reason = "..." and approved_by = "..." under [overrides] (recorded in the ledger)
    """
    from lastknown.disclose.policy import Policy

    defaults = settings_in_force(Policy(), MatchConfig())
    for section, label in SECTIONS.items():
        in_force, granted = changed.get(section, {}), approved.get(section, {})
        for key, value in in_force.items():
            if key in granted and granted[key] == value:
                continue
            was = (f"; the batch approves {key} = {_toml(granted[key])}" if key in granted
                   else "")
            errors.add(f"{label} {key} = {_toml(value)} (default {_toml(defaults[section][key])})"
                       f" changes who gets disclosed and is not approved{was}: add to the batch "
                       f"file [overrides.{section}] {key} = {_toml(value)}, with reason = "
                       "\"...\" and approved_by = \"...\" under [overrides] (recorded in the "
                       "ledger)")
        for key, value in granted.items():
            if key in in_force:
                continue
            if key not in defaults[section]:
                errors.add(f"[overrides.{section}] `{key}` is not a {label}; known: "
                           f"{', '.join(defaults[section])}")
            else:
                errors.add(f"[overrides.{section}] approves {key} = {_toml(value)}, but the "
                           f"run uses {_toml(defaults[section][key])} (the default): give the "
                           f"approved {'--config' if section == 'match' else '--policy'} file "
                           "or remove the line")


def settings_record(policy: Policy, match: MatchConfig) -> dict[str, Any]:
    """What the batch's ledger record keeps: every setting in force and what was changed."""
    return {"in_force": settings_in_force(policy, match),
            "changed": changed_settings(policy, match)}
