"""The JavaScript SDK's TypeScript declarations: generated from contracts/schemas and the gateway's
OpenAPI and committed (clients/js/src/generated), they must be what the generator makes today,
and they, the hand-written ones and a typed usage example must type-check."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SDK = ROOT / "clients" / "js"


def _node() -> str:
    node = shutil.which("node")
    assert node, "node (≥ 20) is needed to check clients/js: install Node.js"
    return node


def _run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_the_generated_types_are_those_of_the_schemas_and_the_openapi_of_today():
    checked = _run(
        _node(),
        str(SDK / "scripts" / "generate.mjs"),
        "--check",
        env={**os.environ, "VITRINE_PYTHON": sys.executable},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_declarations_and_a_typed_usage_example_type_check():
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "typescript is missing: run `make install` (npm ci)"
    checked = _run(_node(), str(tsc), "-p", str(SDK / "tsconfig.json"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
