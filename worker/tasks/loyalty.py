"""Loyalty follow-ups (issue 9): earning on paid orders and custom events, pending points, expiry.

Messages on a project's ``loyalty`` stream only wake the task; the work is the project's open rows
of ``loyalty_triggers`` and what fell due, so one message or many do the same.
"""

from __future__ import annotations

from voucherd.catalog import activity
from voucherd.loyalty import earning as loyalty_earning
from voucherd.platform.messages import Message
from worker.base import WorkerContext, task


@task(activity.STREAM, per_project=True, batch_size=100, timeout_s=120, max_tries=10)
async def run_loyalty(ctx: WorkerContext, messages: list[Message]) -> None:
    for project_id in sorted({str(m.payload.get("project_id")) for m in messages if m.payload.get("project_id")}):
        await loyalty_earning.process(ctx.redis, ctx.pool, project_id)
