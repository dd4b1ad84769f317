"""The type engine: how Python values become literals and back, and how to teach it new types
(``TypeEngine.register(MyTransformer())``)."""

from flyte._types._public import (
    FlytePickle,
    Renderable,
    TypeEngine,
    TypeTransformer,
    TypeTransformerFailedError,
    guess_interface,
    literal_string_repr,
)

__all__ = [
    "FlytePickle",
    "Renderable",
    "TypeEngine",
    "TypeTransformer",
    "TypeTransformerFailedError",
    "guess_interface",
    "literal_string_repr",
]
