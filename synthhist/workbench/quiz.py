"""Quizzes for teaching: seeded question plans and the adaptive difficulty staircase (no images, no I/O).

Mode "class": a synthetic tile of the class blend A -> B at position t; the truth is the class nearer to the
tile (A for t < 0.5, B for t > 0.5). The difficulty is the distance of t from its class end, one of LEVELS:
0 is a pure class image (easy), 0.4 sits next to the boundary (hard). A 1-up/1-down staircase moves one level
toward the boundary after a correct answer and one level back after a mistake.
Mode "real": a real tile or a synthetic one, drawn half and half; the truth is "real" or "synthetic".

The quiz seed fixes everything but the staircase: the same seed gives every learner the same seeds, class
pairs and sides; pre- and post-tests use different seeds with the same difficulty rule.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np

from synthhist.seeds import MAX_SEED

LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4)  # distance of the blend position t from the class end
REAL_ANSWERS = ("real", "synthetic")


@dataclass
class Question:
    """One question: its public id, what it shows, and (never sent before the answer) its truth."""

    id: str
    index: int
    seed: int  # latent seed of the synthetic tile
    truth: int | str  # class index (mode class) or "real" / "synthetic"
    difficulty: float = 0.0  # mode class: the distance of t from the truth's class end
    cls: int = 0  # class A of the blend (mode class)
    end: int = 1  # class B of the blend (mode class)
    t: float = 0.0  # blend position (mode class)
    real_index: int = -1  # which real tile (mode real, truth "real")
    asked_at: float = 0.0  # time.monotonic() when it was sent
    concordant: bool = True  # with a classifier: its prediction follows this seed's class change
    answer: int | str | None = None


@dataclass
class Quiz:
    """A quiz in progress: a learner's questions, asked one at a time, the next one planned from the answers."""

    id: str
    learner: str
    mode: str
    questions: int
    seed: int
    c_dim: int = 2
    n_real: int = 0
    level: int = 0  # staircase position in LEVELS
    asked: list[Question] = field(default_factory=list)

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        n = self.questions  # everything drawn up front, so the plan does not depend on the answers
        self._seeds = rng.integers(0, MAX_SEED + 1, size=(n, 32), dtype=np.int64)  # candidates per question
        self._pairs = [tuple(int(x) for x in rng.choice(max(self.c_dim, 2), 2, replace=False)) for _ in range(n)]
        self._side = rng.integers(0, 2, size=n)  # class: 0 -> truth is class A, 1 -> class B; real: 0 -> real
        self._real = rng.integers(0, max(self.n_real, 1), size=n)

    def candidates(self, i: int) -> list[int]:
        """Latent seeds for question i, in the order to try them (the first usable one is taken)."""
        return [int(s) for s in self._seeds[i]]

    def plan(self, seed: int) -> Question:
        """The next question (index len(asked)) using latent `seed`; appended to asked."""
        i = len(self.asked)
        qid = secrets.token_hex(8)  # opaque: says nothing about the truth
        if self.mode == "class":
            a, b = self._pairs[i]
            d = LEVELS[self.level]
            side = int(self._side[i])
            q = Question(qid, i, seed, truth=(a, b)[side], difficulty=d, cls=a, end=b, t=1.0 - d if side else d)
        else:
            real = self._side[i] == 0 and self.n_real > 0
            q = Question(qid, i, seed, truth="real" if real else "synthetic",
                         real_index=int(self._real[i]) if real else -1)
        self.asked.append(q)
        return q

    def pair(self, i: int) -> tuple[int, int]:
        """The class pair (A, B) of question i."""
        return self._pairs[i]

    def record(self, q: Question, answer: int | str) -> bool:
        """Store the answer, move the staircase, and say whether it was right."""
        q.answer = answer
        correct = answer == q.truth
        if self.mode == "class":
            self.level = min(self.level + 1, len(LEVELS) - 1) if correct else max(self.level - 1, 0)
        return correct

    def done(self) -> bool:
        """True when every question was asked and answered."""
        return len(self.asked) == self.questions and self.asked[-1].answer is not None
