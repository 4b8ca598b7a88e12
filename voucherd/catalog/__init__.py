"""The shop's catalog and its customers: customers and their ids, products and SKUs, orders, segments,
publications and wallets, and the activity triggers that loyalty programs react to.

May import: voucherd.definitions, voucherd.platform and engine."""
