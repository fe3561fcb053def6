"""The gateway's web app: the LAN UI, the local cloud API, health and metrics."""

from web.app import create_app, create_asgi

__all__ = ["create_app", "create_asgi"]
