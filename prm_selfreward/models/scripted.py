"""A Generator driven by plain Python callables: for tests, examples and pipelines without a model.

``generate_fn(prompt, n, params) -> list[str]`` supplies raw texts (stop strings are applied here as a
real backend would); ``score_fn(prompt, continuation) -> list[float]`` supplies token log-probs.
Token counts are whitespace-word counts, enough for accounting tests. With ``context_length`` the
generator has a context, in those words, as a real backend has (see :mod:`.budget`): a prompt that
fills it gets an empty ``"length"`` completion, without ``generate_fn`` being asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import Completion, GenerationParams, TokenUsage, truncate_at_stop

GenerateFn = Callable[[str, int, GenerationParams], list[str]]
ScoreFn = Callable[[str, str], list[float]]


class ScriptedGenerator:
    def __init__(
        self,
        generate_fn: GenerateFn | None = None,
        score_fn: ScoreFn | None = None,
        template: str = "{message}",
        context_length: int | None = None,
    ):
        self.context_length = context_length
        self.generate_fn = generate_fn
        self.score_fn = score_fn
        self.template = template
        self.usage = TokenUsage()
        self.generate_calls: list[tuple[list[str], int]] = []
        self.score_calls: list[tuple[list[str], list[str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def format_prompt(self, message: str) -> str:
        return self.template.format(message=message)

    def generate(
        self, prompts: Sequence[str], n: int = 1, params: GenerationParams | None = None
    ) -> list[list[Completion]]:
        if self.generate_fn is None:
            raise RuntimeError("ScriptedGenerator: no generate_fn given")
        params = params or GenerationParams()
        self.usage.calls += 1
        self.generate_calls.append((list(prompts), n))
        out: list[list[Completion]] = []
        for prompt in prompts:
            if self.context_length is not None and self.count_tokens(prompt) >= self.context_length:
                out.append([Completion("", len(prompt.split()), 0, "length") for _ in range(n)])
                self.usage.skipped_prompts += 1
                continue
            texts = self.generate_fn(prompt, n, params)
            if len(texts) != n:
                raise ValueError(f"generate_fn returned {len(texts)} texts, expected {n}")
            row = []
            for raw in texts:
                text, stop = truncate_at_stop(raw, params.stop)
                ntok = len(text.split())
                reason = "stop" if stop is not None else "eos"
                row.append(Completion(text, len(prompt.split()), ntok, reason, stop))
                self.usage.prompt_tokens += len(prompt.split())
                self.usage.generated_tokens += ntok
            out.append(row)
        return out

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[list[float]]:
        if self.score_fn is None:
            raise RuntimeError("ScriptedGenerator: no score_fn given")
        if len(prompts) != len(continuations):
            raise ValueError("score: prompts and continuations differ in length")
        self.usage.calls += 1
        self.score_calls.append((list(prompts), list(continuations)))
        out = []
        for prompt, cont in zip(prompts, continuations, strict=True):
            lps = list(self.score_fn(prompt, cont))
            self.usage.prompt_tokens += len(prompt.split())
            self.usage.scored_tokens += len(lps)
            out.append(lps)
        return out
