"""Teaching mode of the workbench: quizzes (name the class, real or synthetic), lessons, scores (teach_router).

Questions never carry their answer: images are PNG data URLs, question ids are random, and the blend
position, seed and class pair are sent only in the feedback after the answer.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from PIL import Image
from pydantic import BaseModel, Field, StrictInt, StrictStr

from synthhist.errors import UserError
from synthhist.explain.concordance import concordance, default_outcome
from synthhist.gan.blend import class_blend_ws
from synthhist.gan.latent import z_from_seeds
from synthhist.images import centre_crop_resize, to_uint8
from synthhist.seeds import MAX_SEED
from synthhist.wsi.tfrecord import read_tfrecord
from synthhist.workbench.quiz import REAL_ANSWERS, Question, Quiz
from synthhist.workbench.renderer import png_data_url
from synthhist.workbench.scores import Scores, check_learner, summarise

STATIC = Path(__file__).resolve().parent / "static"
STRIP = (0.0, 0.25, 0.5, 0.75, 1.0)  # blend positions of the feedback strip
MAX_QUIZZES = 1000  # quizzes kept in memory (the oldest are dropped; their answers stay on disk)
MAX_REAL = 2000  # real tiles read from --real
MAX_LESSON = 500  # rows of a lesson CSV
MAX_REAL_PIXELS = 4096 * 4096  # a real tile larger than this is refused before decoding
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


class QuizRequest(BaseModel):
    """A new quiz: who takes it, which mode, how many questions, and the quiz seed (same seed, same questions)."""

    learner: str = Field(min_length=1, max_length=64)
    mode: Literal["class", "real"] = "class"
    questions: int = Field(10, ge=1, le=200)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    label: str = Field("quiz", pattern=r"^[A-Za-z0-9_]{1,32}$", description="e.g. pre / post: groups the summary")


class AnswerRequest(BaseModel):
    """The learner's answer to the current question: a class index (mode class) or 'real' / 'synthetic'."""

    question: str = Field(min_length=1, max_length=64)
    answer: StrictInt | StrictStr


class LessonRequest(BaseModel):
    """A saved-seed CSV (the workbench's export, with a 'note' column) under the allowed folders."""

    file: str = Field(min_length=1, max_length=4096)


def read_real_tiles(folder: Path, limit: int = MAX_REAL) -> list[bytes]:
    """Encoded tile images from a folder of TFRecords (our layout) and/or image files, sorted by file; UserError if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--real {folder}: not a folder")
    tiles: list[bytes] = []
    for path in sorted(folder.iterdir()):
        if len(tiles) >= limit:
            break
        if path.suffix == ".tfrecords":
            for rec in read_tfrecord(path):
                tiles.append(rec["image_raw"])
                if len(tiles) >= limit:
                    break
        elif path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            tiles.append(path.read_bytes())
    if not tiles:
        raise UserError(f"--real {folder}: no .tfrecords or image files (png, jpg, tif) found")
    return tiles


def real_tile(data: bytes, px: int) -> np.ndarray:
    """An encoded real tile as HWC uint8 RGB, centre-cropped square and resized (antialiased bicubic) to px.

    Real tiles are taken to cover the GAN's µm (extract them at the GAN's tile size, e.g. from the same
    TFRecords it was trained on); only their pixel size is matched here."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_REAL_PIXELS:
            raise UserError(f"a real tile is {img.width} x {img.height} px, larger than {MAX_REAL_PIXELS} pixels")
        img.draft("RGB", (px, px))
        img = img.convert("RGB")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"a real tile could not be decoded: {type(e).__name__}") from None
    s = min(img.size)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    square = torch.from_numpy(np.asarray(img.crop((left, top, left + s, top + s))).copy())[None]  # [1, s, s, 3]
    return centre_crop_resize(square, s, 1.0, px, 1.0)[0].numpy()  # the project's one resize rule


class Teacher:
    """Quizzes in progress and the images they show, made with the workbench's loaded network and classifier."""

    def __init__(self, renderer, scores: Scores, real: list[bytes]):
        self.renderer, self.scores, self.real = renderer, scores, real
        self.quizzes: OrderedDict[str, Quiz] = OrderedDict()
        self._lock = threading.Lock()  # one teaching job at a time (the network is only read)

    # ---------------------------------------------------------------------------------- images
    def _net(self):
        if self.renderer.net is None:
            raise UserError("no network loaded: load one in the workbench first")
        return self.renderer.net

    @torch.inference_mode()
    def blend_images(self, seed: int, a: int, b: int, ts) -> torch.Tensor:
        """Images [len(ts), 3, R, R] of one seed along the class blend a -> b."""
        G = self._net().G
        t = torch.tensor(list(ts), dtype=torch.float32, device=self.renderer.device)
        z = z_from_seeds([seed], G.z_dim, self.renderer.device).expand(len(t), -1)
        return G.synthesis(class_blend_ws(G, z, a, b, t, 1.0, None), noise_mode="const")

    def _bridge(self):
        """The GAN -> classifier bridge, or None without a classifier or with unknown µm."""
        if self.renderer.clf is None:
            return None
        try:
            return self.renderer.bridge()
        except UserError:
            return None

    def concordant(self, seed: int, a: int, b: int) -> bool:
        """True when the classifier's prediction follows the class change a -> b of this seed (not 'none')."""
        bridge, clf = self._bridge(), self.renderer.clf
        k, thresholds = default_outcome(clf, None if clf.model_type == "linear" or b >= clf.n_outputs else b,
                                        (None, None, None))
        preds = np.asarray(clf.predict(bridge(self.blend_images(seed, a, b, (0.0, 1.0)))), np.float64)
        return concordance(preds[:1, k], preds[1:, k], thresholds)[0] != "none"

    def _pick_seed(self, quiz: Quiz) -> tuple[int, bool]:
        """(latent seed, concordant) for the next question: with a classifier, the first concordant candidate."""
        cands = quiz.candidates(len(quiz.asked))
        if quiz.mode != "class" or self._bridge() is None:
            return cands[0], True
        a, b = quiz.pair(len(quiz.asked))
        for s in cands:
            if self.concordant(s, a, b):
                return s, True
        return cands[0], False

    def _question_json(self, quiz: Quiz, q: Question) -> dict:
        net = self._net()
        if q.truth == "real":
            image = real_tile(self.real[q.real_index], net.G.img_resolution)
        else:
            a, b, t = (q.cls, q.end, q.t) if quiz.mode == "class" else (*quiz.pair(q.index), 0.0)
            image = to_uint8(self.blend_images(q.seed, a, b, (t,)))[0].cpu().numpy()
        q.asked_at = time.monotonic()
        choices = (list(REAL_ANSWERS) if quiz.mode == "real" else
                   [{"value": k, "name": n} for k, n in enumerate(self.class_names())])
        return {"id": q.id, "number": q.index + 1, "of": quiz.questions, "mode": quiz.mode,
                "image": png_data_url(image), "choices": choices}

    def class_names(self) -> list[str]:
        net = self._net()
        return list(net.class_names or [f"class {k}" for k in range(net.c_dim)])

    # ---------------------------------------------------------------------------------- quiz flow
    def start(self, req: QuizRequest) -> dict:
        """Create a quiz and return its id and first question."""
        check_learner(req.learner)
        net = self._net()
        if req.mode == "class" and net.c_dim < 2:
            raise UserError("'name the class' needs a class-conditional network with at least two classes")
        if req.mode == "real" and not self.real:
            raise UserError("no real tiles: start the workbench with --real FOLDER")
        quiz = Quiz(f"{req.label}-{secrets.token_hex(6)}", req.learner, req.mode, req.questions, req.seed,
                    c_dim=max(net.c_dim, 2), n_real=len(self.real))
        with self._lock:
            first = self._next(quiz)
            self.quizzes[quiz.id] = quiz
            while len(self.quizzes) > MAX_QUIZZES:
                self.quizzes.popitem(last=False)
        return {"quiz": quiz.id, "learner": quiz.learner, "questions": quiz.questions, "question": first}

    def _next(self, quiz: Quiz) -> dict:
        seed, ok = self._pick_seed(quiz)
        q = quiz.plan(seed)
        q.concordant = ok
        return self._question_json(quiz, q)

    def answer(self, quiz_id: str, req: AnswerRequest) -> dict:
        """Check and record an answer; the feedback and the next question (None at the end)."""
        with self._lock:  # one answer at a time: a double answer sent twice at once is still refused
            return self._answer(quiz_id, req)

    def _answer(self, quiz_id: str, req: AnswerRequest) -> dict:
        quiz = self.quizzes.get(quiz_id)
        if quiz is None:
            raise HTTPException(404, "unknown quiz")
        q = next((x for x in quiz.asked if x.id == req.question), None)
        if q is None:
            raise HTTPException(404, "unknown question")
        if q.answer is not None:
            raise HTTPException(409, "this question was already answered")
        answer = self._check_answer(quiz, req.answer)
        ms = round((time.monotonic() - q.asked_at) * 1000)
        correct = quiz.record(q, answer)
        self.scores.append({"learner": quiz.learner, "quiz": quiz.id, "mode": quiz.mode, "question": q.index + 1,
                            "truth": q.truth, "answer": answer, "correct": int(correct),
                            "difficulty": q.difficulty, "ms": ms})
        feedback = self._feedback(quiz, q)
        nxt = None if len(quiz.asked) >= quiz.questions else self._next(quiz)
        return {"correct": correct, "truth": q.truth, "feedback": feedback, "next": nxt}

    def _check_answer(self, quiz: Quiz, answer) -> int | str:
        if quiz.mode == "real":
            if answer not in REAL_ANSWERS:
                raise HTTPException(422, "answer must be 'real' or 'synthetic'")
            return answer
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < self._net().c_dim:
            raise HTTPException(422, f"answer must be a class index 0 to {self._net().c_dim - 1}")
        return answer

    def _feedback(self, quiz: Quiz, q: Question) -> dict:
        """What the page shows after the answer: the truth's name; mode class: the blend strip and the prediction."""
        if quiz.mode == "real":
            return {"truth_name": q.truth}
        names = self.class_names()
        imgs = self.blend_images(q.seed, q.cls, q.end, (*STRIP, q.t))
        out = {"truth_name": names[q.truth], "seed": q.seed, "cls": q.cls, "end": q.end, "t": q.t,
               "class_names": [names[q.cls], names[q.end]], "concordant": q.concordant,
               "strip": [{"t": t, "image": png_data_url(x)} for t, x in zip(STRIP, to_uint8(imgs[:-1]).cpu().numpy())],
               "prediction": None}
        bridge = self._bridge()
        if bridge is not None:
            out["prediction"] = self.renderer._prediction(np.asarray(self.renderer.clf.predict(bridge(imgs[-1:])))[0])
        return out

    def strip(self, seed: int, a: int, b: int | None) -> list[dict]:
        """The blend strip a -> b of one seed (for lessons; b None: the next class after a)."""
        with self._lock:
            c = self._net().c_dim
            b = (a + 1) % max(c, 1) if b is None else b
            for k in (a, b):
                if not 0 <= k < c:
                    raise UserError(f"class {k} is out of range: the network has {c} classes (0 to {c - 1})")
            imgs = to_uint8(self.blend_images(seed, a, b, STRIP)).cpu().numpy()
        return [{"t": t, "image": png_data_url(x)} for t, x in zip(STRIP, imgs)]


def read_lesson(path: Path) -> list[dict]:
    """Steps {seed, cls, end, note} of a saved-seed CSV (columns seed, cls, end as the workbench exports, note)."""
    try:
        with open(path, newline="") as f:
            rows = list(itertools.islice(csv.DictReader(f), MAX_LESSON + 1))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path.name}: not a readable CSV ({type(e).__name__})") from None
    if len(rows) > MAX_LESSON:
        raise UserError(f"{path.name}: more than {MAX_LESSON} rows")
    steps = []
    for i, r in enumerate(rows, 2):
        try:
            seed = int(r.get("seed") or "")
            cls = int(r.get("cls") or 0)
            end = int(r["end"]) if r.get("end") else None  # a plain-class row: blend to the next class
        except ValueError:
            raise UserError(f"{path.name} line {i}: seed, cls and end must be integers") from None
        if not 0 <= seed <= MAX_SEED:
            raise UserError(f"{path.name} line {i}: seed {seed} out of range")
        steps.append({"seed": seed, "cls": cls, "end": end, "note": (r.get("note") or "")[:2000]})
    if not steps:
        raise UserError(f"{path.name}: no rows (need a 'seed' column)")
    return steps


def teach_router(renderer, folders, results_dir: Path, real_dir: Path | None = None) -> APIRouter:
    """The teaching page and API, over the workbench's renderer and allowed folders."""
    teacher = Teacher(renderer, Scores(results_dir), read_real_tiles(real_dir) if real_dir else [])
    router = APIRouter()

    @router.get("/teach", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "teach.html", headers={"Cache-Control": "no-cache"})

    @router.post("/api/quiz")
    async def start(req: QuizRequest):
        """Start a quiz: {quiz, question}; the question never holds its answer."""
        return await asyncio.to_thread(teacher.start, req)

    @router.post("/api/quiz/{quiz}/answer")
    async def answer(quiz: str, req: AnswerRequest):
        """Answer the current question: {correct, truth, feedback, next}."""
        return await asyncio.to_thread(teacher.answer, quiz, req)

    @router.get("/api/quiz/{quiz}/summary")
    async def quiz_summary(quiz: str):
        """Answered, correct, by_class and by_difficulty of one quiz (from the results on disk)."""
        known = teacher.quizzes.get(quiz)
        rows = teacher.scores.rows(known.learner if known else None, quiz)
        if known is None and not rows:
            raise HTTPException(404, "unknown quiz")
        return summarise(rows)

    @router.get("/api/teach/summary")
    async def summary(learner: str | None = None):
        """Summary of one learner's answers, or of the whole class."""
        return {"learner": learner, **summarise(teacher.scores.rows(check_learner(learner) if learner else None))}

    @router.get("/api/teach/results.csv")
    async def results_csv(learner: str | None = None):
        """All answer rows (of one learner, or of the class) as CSV."""
        text = teacher.scores.csv_text(check_learner(learner) if learner else None)
        return Response(text, media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{learner or "class"}_results.csv"'})

    @router.post("/api/lesson")
    async def lesson(req: LessonRequest):
        """The steps of a lesson CSV under the allowed folders."""
        return {"steps": await asyncio.to_thread(read_lesson, folders.resolve(req.file))}

    @router.get("/api/teach/strip")
    async def strip(seed: int = 0, cls: int = 0, end: int | None = None):
        """The class-blend strip of one seed."""
        if not 0 <= seed <= MAX_SEED:
            raise HTTPException(422, "seed out of range")
        end = (cls + 1) % max(teacher._net().c_dim, 1) if end is None else end
        return {"cls": cls, "end": end, "strip": await asyncio.to_thread(teacher.strip, seed, cls, end)}

    return router
