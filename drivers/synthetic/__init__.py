"""A synthetic source of readings for the demo and tests, until real simulators stand in."""

from drivers.synthetic.source import SyntheticSource

__all__ = ["SyntheticSource"]
