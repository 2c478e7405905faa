"""Schemathesis hooks for Baton's CI run: long polls wait a few milliseconds, not minutes.

`POST /api/wait-signal` and `POST /api/tasks/{id}/wait` wait as long as `timeoutMs` asks (up to
the server's clamp), or the server's default when it is absent. Right before each call, a case
for these routes keeps what makes it valid or invalid, except that a number above WAIT_MS_MAX
becomes WAIT_MS_MAX and an absent `timeoutMs` (or an absent body) becomes WAIT_MS_MAX, so the run
covers these routes in seconds. A value of the wrong type (a string, null, a boolean) is left as
it is: the server must answer 400.
"""

import schemathesis
from schemathesis.core import NotSet

WAIT_MS_MAX = 50


def _is_long_poll(case):
    path = getattr(case.operation, "path", "") or ""
    return path.endswith("/wait") or path.endswith("/wait-signal")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not _is_long_poll(case):
        return
    if isinstance(case.body, NotSet) or case.body is None:
        case.body = {"timeoutMs": WAIT_MS_MAX}
        case.media_type = "application/json"
        return
    if not isinstance(case.body, dict):
        return
    value = case.body.get("timeoutMs")
    if "timeoutMs" not in case.body:
        case.body["timeoutMs"] = WAIT_MS_MAX
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value > WAIT_MS_MAX:
        case.body["timeoutMs"] = WAIT_MS_MAX
