"""Streaming and WebSocket APIs, for the --buffer-streams tests (written to a project dir to be built, too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from modelbundle import Service, api


class Streams(Service):
    name = "streams"

    def setup(self) -> None:
        #: the items each stream yielded, to check the answer holds all of them
        self.closed: list[str] = []

    @api
    def tokens(self, prompt: str) -> Iterator[str]:
        try:
            for word in prompt.split():
                yield word.upper() + " "
        finally:
            self.closed.append("tokens")

    @api
    async def squares(self, n: int) -> AsyncIterator[dict[str, int]]:
        for i in range(n):
            await asyncio.sleep(0)
            yield {"i": i, "square": i * i}

    @api
    def countdown(self, n: int) -> Iterator[int]:
        return iter(range(n, 0, -1))  # not a generator: a function returning an iterator

    @api
    def breaks(self, n: int) -> Iterator[int]:
        yield n
        raise RuntimeError(f"broke after {n}")

    @api
    def plain(self, n: int) -> int:
        return n + 1


class WithSocket(Service):
    @api
    def plain(self, n: int) -> int:
        return n + 1

    @api(websocket=True)
    async def echo(self, messages: AsyncIterator[str]) -> AsyncIterator[str]:
        async for message in messages:
            yield message


class OnlySocket(Service):
    @api(websocket=True)
    async def echo(self, messages: AsyncIterator[str]) -> AsyncIterator[str]:
        async for message in messages:
            yield message
