"""The type engine: Python values <-> ``flyteidl2.core`` literals, and task interfaces."""

from flyte._types._engine import FlytePickleWarning, LiteralEngine, LiteralTransformer
from flyte._types._interface import NativeInterface

__all__ = ["FlytePickleWarning", "NativeInterface", "LiteralEngine", "LiteralTransformer"]
