"""A project's definitions, compiled once per definitions version and kept in each process.

The hot path reads the project's version in its one Redis round trip; when it has
moved (a campaign, tier, rule, category or stacking-rules change bumped it), the
definitions are loaded from PostgreSQL again and their rule sets compiled. Nothing
else on the hot path touches PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

import engine
from voucherd.checkout import redemption_counters
from voucherd.definitions import stacking_rules
from voucherd.platform.timeutil import iso_us

# Compiled redeemable definitions kept per project and definitions version.
COMPILED_KEPT = 10_000


@dataclass
class ProjectDefinitions:
    version: int
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    tiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    # related object id (campaign, voucher, tier) -> compiled rule sets, and their raw definitions
    rules: dict[str, list[Any]] = field(default_factory=dict)
    raw_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    stacking_rules: dict[str, Any] = field(default_factory=dict)
    collections: dict[str, set[str]] = field(default_factory=dict)
    prices: dict[str, int] = field(default_factory=dict)
    # (related_object, source_id) -> id, so cart items given by source_id resolve to catalog ids
    source_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    sku_products: dict[str, str] = field(default_factory=dict)
    # Loyalty rewards (issue 9): reward id -> {id, name, type, parameters}; campaign id -> reward id -> assignment
    rewards: dict[str, dict[str, Any]] = field(default_factory=dict)
    reward_assignments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    loaded_at: float = 0.0
    # Built on first use by voucherd.checkout.qualifications, then kept with these definitions.
    qualifier: Any = None
    # Redeemable definitions compiled for the engine on first use (see compiled_redeemable).
    compiled: dict[tuple[str, ...], Any] = field(default_factory=dict)
    # (scope, campaign id, code or tier id) -> the counts a redemption of it moves, with their caps.
    count_plans: dict[tuple[str, str, str], redemption_counters.CountPlan] = field(default_factory=dict)

    def category_list(self, category_id: str | None) -> list[dict[str, Any]]:
        if not category_id or category_id not in self.categories:
            return []
        return [self.categories[category_id]]

    def count_plan(self, owners: tuple[str, str, str]) -> redemption_counters.CountPlan:
        """The counts a redemption moves and their caps, for (scope, campaign id, code or tier id).

        The caps come from the owners' rule sets, which these definitions fix: worked out once, not
        on every redemption. Standalone codes are each their own scope, so at most COMPILED_KEPT are kept.
        """
        found = self.count_plans.get(owners)
        if found is None:
            rule_sets = [rs for owner in dict.fromkeys(o for o in owners if o) for rs in self.raw_rules.get(owner, [])]
            found = redemption_counters.count_plan(rule_sets)
            if len(self.count_plans) >= COMPILED_KEPT:
                self.count_plans.clear()
            self.count_plans[owners] = found
        return found

    def compiled_redeemable(self, key: tuple[str, ...], discount: dict[str, Any] | None, rules: list[Any]) -> Any:
        """The engine's compiled form of a discount and its rule sets, kept with these definitions.

        ``key`` names a definition that cannot change while these definitions live: a tier, a
        campaign's voucher template, or a code's own stored definition (its text is in the key).
        Compiling on every request cost about a third of a stacked evaluation. At most
        COMPILED_KEPT are kept (codes with their own definitions could be many); then it starts over.
        """
        found = self.compiled.get(key)
        if found is None:
            found = engine.stacking.compile_redeemable({"discount": discount, "rules": rules})
            if len(self.compiled) >= COMPILED_KEPT:
                self.compiled.clear()
            self.compiled[key] = found
        return found


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _validity(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "start_date": row["start_date"],
        "expiration_date": row["expiration_date"],
        "validity_timeframe": row["validity_timeframe"],
        "validity_day_of_week": row["validity_day_of_week"],
        "validity_hours": row["validity_hours"],
        "active": row["active"],
    }


async def load(conn: asyncpg.Connection, project_id: str, version: int) -> ProjectDefinitions:
    defs = ProjectDefinitions(version=version, loaded_at=time.monotonic())
    defs.stacking_rules = await stacking_rules.effective(conn, project_id)
    exclusive = set(defs.stacking_rules.get("exclusive_categories") or [])
    joint = set(defs.stacking_rules.get("joint_categories") or [])
    for row in await conn.fetch("SELECT id, name, hierarchy FROM categories WHERE project_id = $1", project_id):
        category: dict[str, Any] = {
            "id": row["id"],
            "name": row["name"],
            "hierarchy": row["hierarchy"],
            "object": "category",
        }
        if row["id"] in exclusive:
            category["stacking_rules_type"] = "EXCLUSIVE"
        elif row["id"] in joint:
            category["stacking_rules_type"] = "JOINT"
        defs.categories[row["id"]] = category

    for row in await conn.fetch("SELECT * FROM campaigns WHERE project_id = $1 AND deleted_at IS NULL", project_id):
        defs.campaigns[row["id"]] = {
            "id": row["id"],
            "name": row["name"],
            "campaign_type": row["campaign_type"],
            "type": row["type"],
            "voucher": row["voucher"] or {},
            "category_id": row["category_id"],
            "metadata": row["metadata"] or {},
            "referral_program": row["referral_program"],
            "created_at": iso_us(row["created_at"]),
            **_validity(row),
        }
    for row in await conn.fetch("SELECT * FROM promotion_tiers WHERE project_id = $1", project_id):
        defs.tiers[row["id"]] = {
            "id": row["id"],
            "name": row["name"],
            "banner": row["banner"],
            "campaign_id": row["campaign_id"],
            "action": row["action"] or {},
            "metadata": row["metadata"] or {},
            "hierarchy": row["hierarchy"],
            "category_id": row["category_id"],
            "created_at": iso_us(row["created_at"]),
            **_validity(row),
        }
    for row in await conn.fetch("SELECT * FROM promotion_stacks WHERE project_id = $1", project_id):
        defs.stacks[row["id"]] = {
            "id": row["id"],
            "name": row["name"],
            "campaign_id": row["campaign_id"],
            "tier_ids": list(row["tier_ids"] or []),
            "category_id": row["category_id"],
        }

    for row in await conn.fetch("SELECT id, source_id, price FROM products WHERE project_id = $1", project_id):
        if row["price"] is not None:
            defs.prices[row["id"]] = int(row["price"])
        if row["source_id"]:
            defs.source_ids[("product", row["source_id"])] = row["id"]
    for row in await conn.fetch("SELECT id, product_id, source_id, price FROM skus WHERE project_id = $1", project_id):
        if row["price"] is not None:
            defs.prices[row["id"]] = int(row["price"])
        defs.sku_products[row["id"]] = row["product_id"]
        if row["source_id"]:
            defs.source_ids[("sku", row["source_id"])] = row["id"]
    for row in await conn.fetch(
        "SELECT id, products FROM product_collections WHERE project_id = $1 AND type = 'STATIC'", project_id
    ):
        defs.collections[row["id"]] = {
            str(p["id"]) for p in row["products"] or [] if isinstance(p, dict) and p.get("id")
        }

    await _load_rewards(conn, project_id, defs)

    rows = await conn.fetch(
        """SELECT a.related_object_id, r.* FROM validation_rules_assignments a
           JOIN validation_rules r ON r.id = a.rule_id AND r.project_id = a.project_id
           WHERE a.project_id = $1 AND a.related_object_type IN ('campaign', 'voucher', 'promotion_tier')
           ORDER BY a.created_at, a.id""",
        project_id,
    )
    for row in rows:
        raw = {
            "id": row["id"],
            "name": row["name"],
            "rules": row["rules"] or {},
            "bundle_rules": row["bundle_rules"] or {},
            "error": row["error"],
            "applicable_to": row["applicable_to"] or {},
        }
        defs.raw_rules.setdefault(row["related_object_id"], []).append(raw)
        defs.rules.setdefault(row["related_object_id"], []).append(engine.compile_rules(raw, defs.collections))
    return defs


async def _load_rewards(conn: asyncpg.Connection, project_id: str, defs: ProjectDefinitions) -> None:
    for row in await conn.fetch("SELECT id, name, type, parameters FROM rewards WHERE project_id = $1", project_id):
        defs.rewards[row["id"]] = {
            "id": row["id"],
            "name": row["name"],
            "type": row["type"],
            "parameters": row["parameters"] or {},
        }
    for row in await conn.fetch(
        "SELECT id, reward_id, campaign_id, points FROM reward_assignments WHERE project_id = $1", project_id
    ):
        defs.reward_assignments.setdefault(row["campaign_id"], {})[row["reward_id"]] = {
            "id": row["id"],
            "points": row["points"],
        }


class DefinitionsCache:
    """Per-process cache of every project's compiled definitions, keyed by definitions version."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._projects: dict[str, ProjectDefinitions] = {}
        self._loading: dict[str, asyncio.Lock] = {}

    def cached(self, project_id: str) -> ProjectDefinitions | None:
        return self._projects.get(project_id)

    async def get(self, project_id: str, version: int) -> ProjectDefinitions:
        current = self._projects.get(project_id)
        if current is not None and current.version == version:
            return current
        lock = self._loading.setdefault(project_id, asyncio.Lock())
        async with lock:  # concurrent requests that see a new version wait for one reload
            current = self._projects.get(project_id)
            if current is not None and current.version == version:
                return current
            async with self._pool.acquire() as conn:
                loaded = await load(conn, project_id, version)
            self._projects[project_id] = loaded
            return loaded
