"""Loyalty and referral programs: programs and members, cards and points, earning rules, tiers,
rewards, referrals, and custom events.

May import: voucherd.catalog, voucherd.definitions, voucherd.platform and engine."""
