"""The trigger form's params: each schema names draft 7, so the validation DAG() runs at every parse checks it
against draft 7's metaschema, not the default 2020-12 one (3x the cost: issue 26, parse)."""

from __future__ import annotations

import jsonschema
import pytest
from jsonschema.validators import validator_for

from script_runner.config.params import dag_params


def _schema(param: object) -> dict[str, object]:
    return dict(param.schema)  # type: ignore[attr-defined]


def test_every_param_is_checked_against_draft_7() -> None:
    params = dag_params()
    assert set(params) == {"only", "exclude", "dry_run", "rerun", "reason", "due_at"}
    for name, param in params.items():
        assert validator_for(_schema(param)) is jsonschema.Draft7Validator, name


def test_the_defaults_and_a_raw_conf_stay_valid_under_draft_7() -> None:
    params = dag_params()
    for param in params.values():
        jsonschema.validate(param.value, _schema(param))  # the default, as DAG() checks it
    jsonschema.validate(["etl/*.sh"], _schema(params["only"]))
    jsonschema.validate(True, _schema(params["rerun"]))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate("yes", _schema(params["rerun"]))
