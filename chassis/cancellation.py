"""Background loops that outlive every error must still stop when cancelled.

Some libraries swallow a task's cancellation, or turn it into an error of their own (redis-py
does while it connects): a loop that logs errors and tries again would then run for ever, and the
process would hang on its way out (seen: a gateway whose port was taken never exited). Such loops
call `raise_if_cancelled` each round and in their error handler.
"""

import asyncio


def raise_if_cancelled(error: BaseException | None = None) -> None:
    """Raise the cancellation that was asked of the current task, if one was (and swallowed)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error
