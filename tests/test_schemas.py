"""The JSON Schemas under schemas/events/ must be exactly what the models produce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.model import SCHEMA_MODELS
from pipeline.schema_export import check_schemas, render_schemas, write_schemas

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas" / "events"


def test_committed_schemas_match_models() -> None:
    stale = check_schemas(SCHEMAS_DIR)
    assert stale == [], f"run `make schemas`: {stale} drifted from pipeline/model.py"


def test_drift_is_detected(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert check_schemas(tmp_path) == []
    path = tmp_path / "auth_event.schema.json"
    schema = json.loads(path.read_text())
    del schema["properties"]["session"]
    path.write_text(json.dumps(schema))
    assert check_schemas(tmp_path) == ["auth_event.schema.json"]
    (tmp_path / "workforce_user.schema.json").unlink()
    assert check_schemas(tmp_path) == ["auth_event.schema.json", "workforce_user.schema.json"]


@pytest.mark.parametrize("name", sorted(SCHEMA_MODELS))
def test_schema_lists_every_field(name: str) -> None:
    schema = json.loads(render_schemas()[f"{name}.schema.json"])
    assert set(schema["properties"]) == set(SCHEMA_MODELS[name].model_fields)
