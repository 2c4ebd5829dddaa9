"""Serve a Service through the OpenAI API: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/models``.

A service opts in by marking methods with the decorators of this module::

    from modelbundle import Service, openai

    class TinyLM(Service):
        @openai.generate(model="tinylm", max_batch_size=64)
        def step(self, batch: list[openai.Sequence]) -> list[str | None]:
            # one call advances every live generation by one token; None ends one
            return [self.next_token(seq) for seq in batch]

        @openai.tokenize
        def tokens(self, text: str) -> list[str]:      # prompt tokens, counted for `usage`
            return text.split()

        @openai.chat_template
        def render(self, messages: list[openai.Message]) -> str:   # chat messages -> one prompt
            return "".join(f"{m.role}: {m.content}\\n" for m in messages) + "assistant:"

        @openai.embeddings(model="tinylm-embed", dimensions=True)
        def embed(self, texts: list[str], dimensions: int | None) -> np.ndarray:
            return ...                                    # one row per text

The surface (stable):

- ``@openai.generate(model=, max_batch_size=64, max_n=1, owned_by=)`` on
  ``def step(self, batch: list[Sequence]) -> list[str | None]`` (or ``async def``). The runtime
  batches generations step by step: a new request joins the running batch at the next
  step, a finished one leaves at once, one whose client went away leaves at the next step.
  The step returns one item per sequence, in order: the next token's text, or ``None`` to
  end that sequence (``finish_reason="stop"``). ``max_tokens`` and ``stop`` are enforced
  by the runtime (``"length"``; the stop text is not sent). A step that raises fails the
  sequences of that step only. ``max_n`` is the largest ``n`` a request may ask for.
  A sync step runs on a worker thread, an ``async`` one on the event loop.
- ``@openai.tokenize`` on ``def f(self, text: str) -> Sized``: the prompt's tokens, whose
  count is ``usage.prompt_tokens``. Without it, prompts are counted in whitespace-separated words.
- ``@openai.chat_template`` on ``def f(self, messages: list[Message]) -> str``: how chat
  messages become the prompt. Without it: ``DEFAULT_CHAT_TEMPLATE`` (one ``role: content``
  line per message, then ``assistant:``).
- ``@openai.embeddings(model=, max_batch_size=64, dimensions=False, owned_by=)`` on
  ``def embed(self, texts: list[str], dimensions: int | None) -> array`` (one row per text;
  numpy or lists of floats). Concurrent requests are merged into one call of at most
  ``max_batch_size`` texts. With ``dimensions=False`` a request that asks for
  ``dimensions`` is refused; with True, the method receives it (else None).

Each decorator marks the method (it stays callable as is); the class is checked when it is
defined, and a wrong declaration raises ``DefinitionError`` naming the method. Served with
``bundle serve``; ``--no-step-batching`` makes every step call carry one sequence.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import DefinitionError

__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "DEFAULT_MAX_BATCH_SIZE",
    "EmbeddingsOptions",
    "GenerateOptions",
    "Message",
    "OpenAIDeclarations",
    "Sequence",
    "chat_template",
    "declarations",
    "default_chat_template",
    "embeddings",
    "generate",
    "tokenize",
]

DEFAULT_MAX_BATCH_SIZE = 64
#: the attribute each decorator sets on the method it marks
OPENAI_ATTR = "__modelbundle_openai__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Message:
    """One chat message, as a chat template receives it (``content`` is text; parts are joined)."""

    role: str
    content: str
    name: str | None = None


@dataclass(eq=False)
class Sequence:
    """One generation in progress, as the step function receives it.

    ``prompt`` is the rendered text (a chat's messages go through the chat template) or,
    for ``/v1/completions`` with a list of token ids, that list. ``tokens`` holds the
    tokens generated so far (the step's earlier answers for this sequence). ``rng`` is
    seeded from ``seed`` (a random seed when the request gives none), so the same seed
    gives the same tokens. ``state`` is the model's own slot: the runtime never reads it.
    """

    prompt: str | list[int]
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    #: which of the request's ``n`` choices this is
    index: int = 0
    tokens: list[str] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    state: Any = None

    def __post_init__(self) -> None:
        if self.seed is not None:
            self.rng = random.Random(self.seed)

    @property
    def text(self) -> str:
        """The text generated so far."""
        return "".join(self.tokens)


@dataclass(frozen=True)
class GenerateOptions:
    """What ``@openai.generate(...)`` was given."""

    model: str
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_n: int = 1
    owned_by: str = "modelbundle"


@dataclass(frozen=True)
class EmbeddingsOptions:
    """What ``@openai.embeddings(...)`` was given."""

    model: str
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    dimensions: bool = False
    owned_by: str = "modelbundle"


@dataclass(frozen=True)
class _Hook:
    role: str  # "tokenize" or "chat_template"


@dataclass(frozen=True)
class OpenAIDeclarations:
    """The checked OpenAI declarations of one Service class (method names, not bound methods)."""

    generate: GenerateOptions | None = None
    step: str | None = None
    step_is_async: bool = False
    embeddings: EmbeddingsOptions | None = None
    embed: str | None = None
    embed_is_async: bool = False
    tokenize: str | None = None
    chat_template: str | None = None

    @property
    def models(self) -> list[tuple[str, str]]:
        """(model id, owned_by) of each served model, generation first."""
        found = [(o.model, o.owned_by) for o in (self.generate, self.embeddings) if o is not None]
        return found


def generate(*, model: str, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, max_n: int = 1, owned_by: str = "modelbundle") -> Callable[[F], F]:
    """Mark the batched step function of a generative model served as ``model`` (see the module docstring)."""
    _check_model(model, "generate")
    _check_count("generate", "max_batch_size", max_batch_size)
    _check_count("generate", "max_n", max_n)
    _check_text("generate", "owned_by", owned_by)
    return _mark(GenerateOptions(model, max_batch_size, max_n, owned_by), "generate")


def embeddings(
    *, model: str, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE, dimensions: bool = False, owned_by: str = "modelbundle"
) -> Callable[[F], F]:
    """Mark the embeddings method of a model served as ``model`` (see the module docstring)."""
    _check_model(model, "embeddings")
    _check_count("embeddings", "max_batch_size", max_batch_size)
    if not isinstance(dimensions, bool):
        raise DefinitionError(f"@openai.embeddings(dimensions=...) must be True or False, got {dimensions!r}")
    _check_text("embeddings", "owned_by", owned_by)
    return _mark(EmbeddingsOptions(model, max_batch_size, dimensions, owned_by), "embeddings")


def tokenize(func: F, /) -> F:
    """Mark ``def f(self, text: str) -> Sized``: the tokens of a prompt, counted for ``usage.prompt_tokens``."""
    return _mark(_Hook("tokenize"), "tokenize")(func)


def chat_template(func: F, /) -> F:
    """Mark ``def f(self, messages: list[Message]) -> str``: how chat messages become the prompt."""
    return _mark(_Hook("chat_template"), "chat_template")(func)


def default_chat_template(messages: list[Message]) -> str:
    """One ``role: content`` line per message, then ``assistant:`` for the model to continue."""
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


DEFAULT_CHAT_TEMPLATE = default_chat_template


def declarations(cls: type) -> OpenAIDeclarations | None:
    """The checked OpenAI declarations of ``cls`` (inherited ones included), or None if it has none."""
    marked: dict[str, tuple[str, Any, Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            mark = getattr(member, OPENAI_ATTR, None)
            if mark is not None:
                marked[name] = (mark[0], mark[1], member)
            elif name in marked:  # overridden without the decorator
                del marked[name]
    if not marked:
        return None
    found: dict[str, Any] = {}
    for name, (role, options, member) in marked.items():
        where = f"{cls.__name__}.{name}"
        if isinstance(member, staticmethod | classmethod):
            raise DefinitionError(f"{where}: @openai.{role} goes on a plain method, not a staticmethod or classmethod")
        if inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
            raise DefinitionError(f"{where}: @openai.{role} marks a method that returns, not a generator")
        if role in found:
            raise DefinitionError(f"{where}: {cls.__name__} already has an @openai.{role} method, {found[role][0]}")
        _check_arity(where, role, member)
        found[role] = (name, options, inspect.iscoroutinefunction(member))
    models = [found[r][1].model for r in ("generate", "embeddings") if r in found]
    if len(models) == 2 and models[0] == models[1]:
        raise DefinitionError(f"{cls.__name__}: the generation and embeddings models must have different names, both are {models[0]!r}")
    if "generate" not in found:
        for hook in ("tokenize", "chat_template"):
            if hook in found:
                raise DefinitionError(f"{cls.__name__}.{found[hook][0]}: @openai.{hook} needs an @openai.generate method beside it")
    generate_ = found.get("generate")
    embed = found.get("embeddings")
    return OpenAIDeclarations(
        generate=generate_[1] if generate_ else None,
        step=generate_[0] if generate_ else None,
        step_is_async=bool(generate_ and generate_[2]),
        embeddings=embed[1] if embed else None,
        embed=embed[0] if embed else None,
        embed_is_async=bool(embed and embed[2]),
        tokenize=found["tokenize"][0] if "tokenize" in found else None,
        chat_template=found["chat_template"][0] if "chat_template" in found else None,
    )


# -- checks ---------------------------------------------------------------------------------
_ARITY = {"generate": 1, "embeddings": 2, "tokenize": 1, "chat_template": 1}
_SHAPES = {
    "generate": "step(self, batch: list[openai.Sequence]) -> list[str | None]",
    "embeddings": "embed(self, texts: list[str], dimensions: int | None) -> array",
    "tokenize": "tokenize(self, text: str) -> list",
    "chat_template": "render(self, messages: list[openai.Message]) -> str",
}


def _check_arity(where: str, role: str, func: Any) -> None:
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional or positional[0].name != "self" or len(positional) != 1 + _ARITY[role]:
        raise DefinitionError(f"{where}: @openai.{role} marks a method shaped {_SHAPES[role]}")


def _mark(options: Any, role: str) -> Callable[[F], F]:
    def mark(function: F) -> F:
        target = function.__func__ if isinstance(function, staticmethod | classmethod) else function
        if not callable(target):
            raise DefinitionError(f"@openai.{role} decorates a method, not {function!r}")
        setattr(target, OPENAI_ATTR, (role, options))  # a mark, not a wrapper
        return function

    return mark


def _check_model(model: Any, decorator: str) -> None:
    if not isinstance(model, str) or not model or model.startswith("/") or any(c.isspace() for c in model):
        raise DefinitionError(f"@openai.{decorator}(model=...) must be a model id such as 'tinylm' (no spaces), got {model!r}")


def _check_count(decorator: str, option: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DefinitionError(f"@openai.{decorator}({option}=...) must be an int >= 1, got {value!r}")


def _check_text(decorator: str, option: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"@openai.{decorator}({option}=...) must be a non-empty string, got {value!r}")
