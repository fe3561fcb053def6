"""Field protocols: each driver turns a bus or radio into readings for the store."""
