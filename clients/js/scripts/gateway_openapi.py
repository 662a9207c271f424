"""Print the gateway's OpenAPI document, as `/openapi.json` serves it, for the SDK's types.

Built from the real app (`create_app`), nothing started:
`python clients/js/scripts/gateway_openapi.py` (clients/js/scripts/generate.mjs runs it).
"""

import json
import sys

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings


def main() -> None:
    document = create_app(GatewaySettings()).openapi()
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
