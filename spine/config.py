"""Run configuration: load, validate against config/schema.yaml, resolve dates.

A bad value is refused before any job runs, with a message that names the key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from spine import calendar as cal
from spine.ingest import checks, gates
from spine.ingest.sources.catalog import SOURCES
from spine.vocabulary import DATASET_REGSHO, DATASET_WEEKLY, TIERS

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "config" / "schema.yaml"
CONFIG_PATH = REPO / "config" / "config.yaml"


class ConfigError(ValueError):
    pass


def _coerce(value: Any, schema: dict) -> Any:
    """Command-line values arrive as strings (`--config seed=3`); read them as the schema's type,
    and YAML dates (`as_of: 2025-06-30` in a config file) as ISO strings."""
    kind = schema.get("type")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
            if kind == "boolean" and value.lower() in ("true", "false"):
                return value.lower() == "true"
        except ValueError:
            return value
    if isinstance(value, dict) and "properties" in schema:
        return {k: _coerce(v, schema["properties"].get(k, {})) for k, v in value.items()}
    if isinstance(value, list) and "items" in schema:
        return [_coerce(v, schema["items"]) for v in value]
    return value


def _key(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _date(key: str, value: Any) -> str:
    try:
        return cal.to_date(value, key).isoformat()
    except ValueError:
        raise ConfigError(f"invalid configuration: config key '{key}': {value!r} is not a date; "
                          "write it as YYYY-MM-DD") from None


def validate(config: dict) -> dict:
    """Validate and normalise a config dict; returns a new dict with as_of/start/end resolved."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    config = _coerce(dict(config), schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"config key '{_key(e)}': {e.message}" for e in errors]
        raise ConfigError("invalid configuration (config/config.yaml or --config):\n  "
                          + "\n  ".join(lines))
    out = dict(config, weeks=list(config.get("weeks") or []))
    today = cal.today_eastern()
    out["as_of"] = _date("as_of", config.get("as_of") or today)
    if out["as_of"] > today.isoformat():
        # a run "as of" a day not yet lived would store weeks FINRA has not published as if it
        # had (the synthetic source invents them; status would call them published)
        raise ConfigError(f"invalid configuration: config key 'as_of': {out['as_of']} is after "
                          f"today ({today}, US/Eastern, FINRA's clock); a run can only be as of "
                          "a day that has happened: leave as_of out for today, or give an "
                          "earlier date")
    for key in ("start", "end"):
        if config.get(key):
            out[key] = _date(key, config[key])
    for i, week in enumerate(config.get("weeks") or []):
        out["weeks"][i] = _date(f"weeks.{i}", week)
        if dt.date.fromisoformat(out["weeks"][i]).weekday() != 0:
            raise ConfigError(f"invalid configuration: config key 'weeks.{i}': {week} is not "
                              "a Monday (a FINRA week starts on its Monday)")
    for i, rev in enumerate(config["synthetic"].get("revisions", [])):
        week = _date(f"synthetic.revisions.{i}.week_start", rev["week_start"])
        if dt.date.fromisoformat(week).weekday() != 0:
            raise ConfigError(f"invalid configuration: config key 'synthetic.revisions.{i}."
                              f"week_start': {week} is not a Monday")
        _date(f"synthetic.revisions.{i}.published", rev["published"])
    if out.get("start") and out.get("end") and out["end"] < out["start"]:
        raise ConfigError(f"invalid configuration: config key 'end' ({out['end']}) is before "
                          f"'start' ({out['start']})")
    gates = config["gates"]
    scopes = [("gates", gates)] + [(f"gates.tiers.{t}", v) for t, v in
                                   (gates.get("tiers") or {}).items()]
    for where, scope in scopes:
        for key, value in scope.items():
            if key.endswith("_band") and value[0] > value[1]:
                raise ConfigError(f"invalid configuration: config key '{where}.{key}': "
                                  f"{list(value)} is inverted; write it [low, high]")
    for key in ("as_of", "start", "end"):
        if out.get(key):
            _in_calendar(key, out[key])
    return out


def _in_calendar(key: str, value: str) -> None:
    """Publication dates come from the XNYS calendar, which spans a fixed range."""
    first, last = cal.calendar_range()
    if not first <= dt.date.fromisoformat(value) <= last:
        raise ConfigError(f"invalid configuration: config key '{key}': {value} is outside the "
                          f"exchange calendar the publication dates come from ({first} to "
                          f"{last}); FINRA's OTC transparency data starts in 2014")


def load(path: str | Path = CONFIG_PATH, **overrides: Any) -> dict:
    """The repository's config file with overrides, validated (for notebooks, CLI and tests)."""
    config = yaml.safe_load(Path(path).read_text())
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return validate(config)


GENERATED = "  # --- written by `python -m spine.config` (the vocabulary, the gate checks, the sources) ---"


def schema_enums(checks: list[str], levels: list[str], sources: dict[str, list[str]]) -> str:
    """The enums of config/schema.yaml, each written once at the end of its `$defs`: the tiers
    (spine.vocabulary), the gate checks and their levels (spine.ingest.gates), the sources of
    each dataset (spine.ingest.sources.catalog)."""
    def enum(name: str, values) -> str:
        return f"  {name}: {{enum: [{', '.join(values)}]}}"

    lines = [GENERATED, enum("tier", TIERS), enum("source", sources[DATASET_WEEKLY]),
             enum("regsho_source", sources[DATASET_REGSHO]), enum("level", levels),
             "  check:", "    enum:"] + [f"      - {c}" for c in checks]
    return "\n".join(lines) + "\n"


def current_schema() -> str:
    """config/schema.yaml as it should read: its text up to the generated block, then the block
    made from the code as it is now (`python -m spine.config` writes it)."""
    text = SCHEMA_PATH.read_text()
    head = text[:text.index(GENERATED)] if GENERATED in text else text
    sources = {d: [n for n, cls in SOURCES.items() if d in cls.datasets]
               for d in (DATASET_WEEKLY, DATASET_REGSHO)}
    levels = [checks.FAIL, checks.WARN, checks.SKIP]
    return head + schema_enums(list(gates.CHECKS), levels, sources)


if __name__ == "__main__":  # python -m spine.config: write the schema's generated block
    SCHEMA_PATH.write_text(current_schema())
    print(f"wrote {SCHEMA_PATH}")
