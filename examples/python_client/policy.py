"""policy - the sync policy's numbers: defaults, --policy overrides, --time-scale.

Every duration of the policy (docs/SYNC_POLICY.md) lives here, in seconds,
already multiplied by --time-scale.  --policy takes the keys of a scenario's
`policy:` (docs/SCENARIOS.md): durations are strings with units ("30s",
"1m30s", "250ms") or integer milliseconds.  Keys that only a server or the
encrypted cache uses are accepted and kept, so one --policy works for both
sides.  An unknown key or a bad value is a usage error (PolicyError).
"""

import json
import re

FIELDS = ("title", "notes", "done", "assignee", "due_at", "remind_at")

# The seed policy, durations in milliseconds (unscaled).
DEFAULTS = {
    "heartbeat_interval": 30000,       # WS-4 (READY's heartbeat_interval_ms wins)
    "heartbeat_misses": 2,             # WS-5
    "hello_timeout": 10000,            # server side; accepted, unused here
    "lock_ttl": 120000,                # CF-1, server side
    "queue_max": 100,
    "retry_delays": [1000, 3000, 9000, 27000, 120000],  # Q-4 / WS-6, last one repeats
    "retry_jitter": 0.0,
    "sync_failed_after": 5,
    "offline_long": 1800000,           # N-1
    "cache_window": 7 * 86400000,      # C-1
    "cache_cap": 20 * 1024 * 1024,     # C-2 (bytes, not scaled)
    "request_timeout": 10000,
    "max_frame": 65536,
    "max_body": 1048576,
    "mergeable_fields": list(FIELDS),  # CF-2
    "event_retain": 10000,
    "idempotency_window": 86400000,    # Q-3, server side; accepted, unused here
}

DURATION_KEYS = ("heartbeat_interval", "hello_timeout", "lock_ttl", "offline_long",
                 "cache_window", "request_timeout", "idempotency_window")
INT_KEYS = {"heartbeat_misses": 1, "queue_max": 1, "sync_failed_after": 1, "event_retain": 0}
SIZE_KEYS = ("cache_cap", "max_frame", "max_body")


class PolicyError(ValueError):
    """A bad --policy or --time-scale: the program exits 2 (usage)."""


_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}


def parse_duration(v):
    """"30s", "1m30s", "250ms", or an integer of milliseconds -> ms (> 0)."""
    if isinstance(v, bool):
        raise PolicyError("not a duration")
    if isinstance(v, int):
        if v <= 0:
            raise PolicyError("not a duration")
        return v
    if not isinstance(v, str) or not v:
        raise PolicyError("not a duration")
    if v.isdigit():
        return int(v)
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", v)
    if not parts or "".join(n + u for n, u in parts) != v:
        raise PolicyError("not a duration")
    ms = sum(int(n) * _UNITS[u] for n, u in parts)
    if ms <= 0:
        raise PolicyError("not a duration")
    return ms


def parse_size(v):
    """Bytes: an integer, or "<n>", "<n>B", "<n>KiB", "<n>MiB", "<n>GiB"."""
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB)?", v) if isinstance(v, str) else None
    if not m or int(m.group(1)) <= 0:
        raise PolicyError("not a size")
    return int(m.group(1)) * {None: 1, "B": 1, "KiB": 1024, "MiB": 1 << 20,
                              "GiB": 1 << 30}[m.group(2)]


class Policy:
    """The policy in force.  Durations are attributes in SECONDS, scaled:
    heartbeat, request_timeout, offline_long, cache_window; retry_delays
    is a list; cache_cap is in bytes."""

    def __init__(self, overrides=None, time_scale=1.0):
        if not isinstance(time_scale, (int, float)) or time_scale <= 0:
            raise PolicyError("--time-scale must be a number > 0")
        raw = dict(DEFAULTS)
        for key, v in (overrides or {}).items():
            raw[key] = self._check(key, v)
        self.raw = raw
        self.time_scale = float(time_scale)
        s = self.time_scale / 1000.0
        self.heartbeat = raw["heartbeat_interval"] * s
        self.heartbeat_misses = raw["heartbeat_misses"]
        self.request_timeout = raw["request_timeout"] * s
        self.offline_long = raw["offline_long"] * s
        self.cache_window = raw["cache_window"] * s
        self.cache_cap = raw["cache_cap"]
        self.retry_delays = [d * s for d in raw["retry_delays"]]
        self.retry_jitter = raw["retry_jitter"]
        self.queue_max = raw["queue_max"]
        self.sync_failed_after = raw["sync_failed_after"]
        self.mergeable = tuple(f for f in FIELDS if f in raw["mergeable_fields"])

    @staticmethod
    def _check(key, v):
        try:
            if key in DURATION_KEYS:
                return parse_duration(v)
            if key in INT_KEYS:
                if isinstance(v, bool) or not isinstance(v, int) or not \
                        INT_KEYS[key] <= v <= 1000000000:
                    raise PolicyError("expected an integer >= %d" % INT_KEYS[key])
                return v
            if key in SIZE_KEYS:
                return parse_size(v)
            if key == "retry_delays":
                if not isinstance(v, list) or not 1 <= len(v) <= 32:
                    raise PolicyError("expected an array of durations")
                return [parse_duration(d) for d in v]
            if key == "retry_jitter":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                    raise PolicyError("expected a number in [0, 1)")
                return float(v)
            if key == "mergeable_fields":
                if not isinstance(v, list) or any(f not in FIELDS for f in v):
                    raise PolicyError("expected an array of " + ", ".join(FIELDS))
                return list(v)
        except PolicyError as e:
            raise PolicyError("%s: %s" % (key, e))
        raise PolicyError('unknown policy key "%s"' % key)

    @classmethod
    def from_json(cls, text, time_scale):
        """--policy JSON (an object; empty text = no overrides)."""
        if text is None or text.strip() == "":
            return cls({}, time_scale)
        try:
            obj = json.loads(text)
        except ValueError as e:
            raise PolicyError("--policy: not JSON: %s" % e)
        if not isinstance(obj, dict):
            raise PolicyError("--policy: expected a JSON object of policy keys")
        return cls(obj, time_scale)

    def retry_delay(self, n, rng=None):
        """Q-4 / WS-6: the delay (s) before retry number n (1-based):
        1, 3, 9, 27, 120 s, then the last value for every later attempt."""
        d = self.retry_delays[min(n, len(self.retry_delays)) - 1]
        if self.retry_jitter > 0 and rng is not None:
            d += d * self.retry_jitter * (rng.random() * 2 - 1)
        return max(0.0, d)
