"""The type engine: Python values <-> ``flyteidl2.core`` literals, and task interfaces."""

from flyte._types._engine import FlytePickleWarning, TypeEngine, TypeTransformer
from flyte._types._interface import NativeInterface

__all__ = ["FlytePickleWarning", "NativeInterface", "TypeEngine", "TypeTransformer"]
