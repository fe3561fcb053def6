"""Outbound HTTP: the sync agent (pushes committed readings upstream, pulls devices, sites,
groups and alert rules, carries alarm actions) and the webhook dispatcher.

The upstream speaks the `/v1` API the gateway itself serves. Nothing here holds
SQL: batches, watermarks, quarantine and deliveries live in the store (`edge.store`).
"""
