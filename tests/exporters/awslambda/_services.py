"""A small service for the in-process handler tests: JSON, text, bytes and an API that fails."""

from __future__ import annotations

from modelbundle import Service, api


class Toolbox(Service):
    name = "toolbox"

    def setup(self) -> None:
        self.setups = getattr(self, "setups", 0) + 1

    @api
    def add(self, x: list[float]) -> float:
        return sum(x)

    @api
    def reverse(self, data: bytes) -> bytes:
        return data[::-1]

    @api
    def greet(self, name: str) -> str:
        return f"hello {name}"

    @api
    def fail(self, n: int) -> int:
        raise ValueError(f"cannot handle {n}")


class BrokenSetup(Service):
    def setup(self) -> None:
        raise RuntimeError("weights file is corrupt")

    @api
    def predict(self, n: int) -> int:
        return n


class SaysGoodbye(Service):
    """A sync teardown() that prints, to tell whether it ran at interpreter exit."""

    def teardown(self) -> None:
        print("teardown ran", flush=True)

    @api
    def predict(self, n: int) -> int:
        return n + 1
