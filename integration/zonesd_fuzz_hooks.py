"""schemathesis hooks of integration/zonesd-fuzz.sh (SCHEMATHESIS_HOOKS=zonesd_fuzz_hooks).

The fuzz is an admin, and an admin may revoke tokens: the stateful phase reads a token's id
from GET /api/tokens and feeds it to DELETE /api/tokens/{id}, its own among them. The bearer
token comes from here: a 401 makes schemathesis ask again, and a revoked token is replaced by
a new admin token made with `zonesd -R ROOT token create` (the CLI, which needs none), so the
rest of the run still reaches the API.
"""

import json
import os
import subprocess

import schemathesis

ZONESD = os.environ["ZONESD_FUZZ_BIN"]
ROOT = os.environ["ZONESD_FUZZ_ROOT"]


def zonesd(*args):
    return subprocess.run(
        [ZONESD, "-R", ROOT, "token", *args],
        check=True, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    ).stdout


@schemathesis.auth(retry_on=[401])
class ZonesdToken:
    token = os.environ["ZONESD_FUZZ_TOKEN"]
    made = 0

    def get(self, case, context):
        names = [t["name"] for t in json.loads(zonesd("list", "-j"))]
        if f"fuzz{ZonesdToken.made or ''}" not in names:
            ZonesdToken.made += 1
            out = zonesd("create", "--role", "admin", "--name", f"fuzz{ZonesdToken.made}")
            ZonesdToken.token = out.strip().splitlines()[-1]
        return ZonesdToken.token

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
