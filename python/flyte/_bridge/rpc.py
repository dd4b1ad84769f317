"""Plain RPCs to a backend (unary and server-streaming), with its sign-in."""

from flyte._core import RpcClient

__all__ = ["RpcClient"]
