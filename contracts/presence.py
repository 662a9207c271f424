"""Who is watching, in Redis: the key layout the gateways write and analytics reads.

`{L}` is the live's id inside braces (a Redis Cluster hash tag: a live's keys share a slot), and
every key starts with the deployment's Redis prefix.
- `viewers:{L}:gw:<gateway>` a set of the viewer keys (user, else session) one gateway holds; the
  gateway refreshes its expiry, so a crashed gateway's viewers vanish after the TTL;
- `viewers:{L}:holders` the gateways that wrote such a set;
- `viewers:{L}:players` players registered over HTTP: viewer key → lease expiry (ms);
- `viewers:{L}:total` views (INCR), `:unique` HyperLogLog of viewer keys, `:peak` the highest
  current published, `:figures` the last `viewers.updated` (what gateways show on arrival);
- `viewers:active` lives with recent presence → last activity (s);
- `viewers:gateways` gateways → when each last wrote its sets (s): a dead gateway's viewers
  watched until then.

Current = the size of the union of the live's holder sets and unexpired player leases, so a
person on two gateways, or with a socket and a registered player, counts once.
"""


def viewer_key(*, user_id: str | None, session_id: str) -> str:
    """The person behind a view: a signed-in user is one person on every device."""
    return f"user:{user_id}" if user_id else f"session:{session_id}"


def live_key(prefix: str, stream_id: str, what: str) -> str:
    """One of a live's keys: `gw:<gateway>`, `holders`, `players`, `total`, `unique`, …"""
    return f"{prefix}viewers:{{{stream_id}}}:{what}"


def gateway_set(gateway_id: str) -> str:
    """The `what` of a gateway's set of a live's viewers."""
    return f"gw:{gateway_id}"


def active_key(prefix: str) -> str:
    return f"{prefix}viewers:active"


def gateways_key(prefix: str) -> str:
    return f"{prefix}viewers:gateways"
