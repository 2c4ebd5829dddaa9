"""OpenAI declarations for the SageMaker protocol tests: ``Lengths`` only embeds (no ``@api``), ``LengthsAndApi`` also has an API.

Each text's vector is ``[characters, words]``, so a test can tell which route answered.
"""

from __future__ import annotations

from modelbundle import Service, api, openai


class Lengths(Service):
    @openai.embeddings(model="lengths")
    def embed(self, texts: list[str], dimensions: int | None) -> list[list[float]]:
        return [[float(len(text)), float(len(text.split()))] for text in texts]


class LengthsAndApi(Lengths):
    @api
    def shout(self, text: str) -> str:
        return text.upper()
