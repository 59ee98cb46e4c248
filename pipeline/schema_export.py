"""JSON Schemas of the event model, kept under `schemas/events/` for consumers outside Python."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.generated import stale
from pipeline.model import SCHEMA_MODELS

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def render_schemas() -> dict[str, str]:
    """File name -> schema text, exactly as written to disk."""
    rendered = {}
    for name, model in SCHEMA_MODELS.items():
        schema = {"$schema": SCHEMA_DRAFT, **model.model_json_schema(mode="serialization")}
        rendered[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def check_schemas(directory: Path) -> list[str]:
    """Names of the schema files that are missing or differ from the models."""
    return [path.name for path in stale(directory, render_schemas())]
