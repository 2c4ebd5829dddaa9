"""Sentiment of a short text with a tiny lexicon model: pydantic models in and out."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from modelbundle import Service, api

_POSITIVE = {"good", "great", "excellent", "love", "happy", "fast", "nice", "wonderful", "best", "fine"}
_NEGATIVE = {"bad", "awful", "terrible", "hate", "sad", "slow", "poor", "worst", "broken", "ugly"}
_WORD = re.compile(r"[a-z']+")


class Review(BaseModel):
    text: str = Field(min_length=1, max_length=10_000, description="The text to classify.")
    language: str = Field("en", description="Only 'en' is supported.")


class Sentiment(BaseModel):
    label: str = Field(description="positive, negative or neutral")
    score: float = Field(ge=-1, le=1, description="From -1 (negative) to 1 (positive).")
    words: int


class TextSentiment(Service):
    """A lexicon sentiment model: a stand-in for a real NLP model with a typed API."""

    def setup(self) -> None:
        self.positive, self.negative = _POSITIVE, _NEGATIVE

    @api
    def sentiment(self, review: Review) -> Sentiment:
        """Classify one review."""
        words = _WORD.findall(review.text.lower())
        hits = sum(w in self.positive for w in words) - sum(w in self.negative for w in words)
        matched = sum(w in self.positive or w in self.negative for w in words)
        score = hits / matched if matched else 0.0
        label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
        return Sentiment(label=label, score=score, words=len(words))
