"""JSON-schema snapshots of every event, kept under version control.

`python -m contracts.snapshot` rewrites them after an intended change; the test suite fails when
a model drifts from its snapshot without one.
"""

import json
from pathlib import Path

from contracts.envelope import Envelope
from contracts.registry import EVENTS, _load_all

SCHEMA_DIR = Path(__file__).with_name("schemas")


def current_schemas() -> dict[str, dict]:
    """File name → JSON schema, for the envelope and every registered payload."""
    _load_all()
    schemas = {"envelope.json": Envelope.model_json_schema()}
    for (type_, version), spec in sorted(EVENTS.items()):
        schemas[f"{type_}.v{version}.json"] = spec.model.model_json_schema()
    return schemas


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, schema in current_schemas().items():
        (SCHEMA_DIR / name).write_text(render(schema))
    print(f"wrote {len(EVENTS) + 1} schemas to {SCHEMA_DIR}")


if __name__ == "__main__":
    main()
