"""The sync agent: pushes committed readings upstream and pulls devices, sites and groups.

The upstream speaks the `/v1` API the gateway itself serves. Nothing here holds
SQL: batches, watermarks and quarantine live in the store (`edge.store`).
"""
