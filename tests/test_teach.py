"""Teaching mode API in-process: quizzes, answers recorded to CSV, staircase, summaries, 4xx, no answer leaks."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from explain_fakes import ToyClassifier, ToyGenerator, ToyNetwork
from synthhist.workbench.app import LOOPBACK_HOSTS, WorkbenchConfig, create_app
from synthhist.workbench.quiz import LEVELS, Quiz
from synthhist.workbench.renderer import Renderer

BASE = "http://127.0.0.1"


def toy_renderer(clf=True) -> Renderer:
    torch.manual_seed(0)
    r = Renderer("cpu")
    r.net = ToyNetwork(ToyGenerator(c_dim=2, img_resolution=32), tile_px=32, tile_um=200.0)
    r.clf = ToyClassifier(tile_px=16, tile_um=100.0) if clf else None
    return r


def make_client(tmp_path, renderer=None, real=None):
    config = WorkbenchConfig(data_dirs=[tmp_path], allowed_hosts=LOOPBACK_HOSTS, results_dir=tmp_path / "results",
                             real=real)
    return TestClient(create_app(config, renderer=renderer or toy_renderer()), base_url=BASE)


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path) as c:
        yield c


def start(client, **kw):
    body = {"learner": "ann", "mode": "class", "questions": 4, "seed": 7, **kw}
    r = client.post("/api/quiz", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def truth_of(client, quiz, q):
    """The truth of question q, learnt only by answering it (wrong on purpose does not matter here)."""
    return client.post(f"/api/quiz/{quiz}/answer", json={"question": q["id"], "answer": 0}).json()


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_quiz_flow_csv_and_summary(client, tmp_path):
    out = start(client)
    quiz, q = out["quiz"], out["question"]
    assert set(q) == {"id", "number", "of", "mode", "image", "choices"} and q["image"].startswith("data:image/png")
    answers, truths = [], []
    while q is not None:
        a = 1 if len(answers) % 2 else 0
        r = client.post(f"/api/quiz/{quiz}/answer", json={"question": q["id"], "answer": a})
        assert r.status_code == 200, r.text
        res = r.json()
        assert res["correct"] == (res["truth"] == a)
        fb = res["feedback"]
        assert len(fb["strip"]) == 5 and fb["truth_name"] == f"class {res['truth']}"
        assert fb["prediction"]["labels"] == ["a", "b"] and fb["concordant"] in (True, False)
        assert (fb["t"] < 0.5) == (res["truth"] == fb["cls"])  # the truth is the class nearer to the tile
        answers.append(a)
        truths.append(res["truth"])
        q = res["next"]
    assert len(answers) == 4
    rows = read_rows(tmp_path / "results" / "ann.csv")
    assert [r["quiz"] for r in rows] == [quiz] * 4 and [int(r["question"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["truth"]) for r in rows] == truths and [int(r["answer"]) for r in rows] == answers
    assert [r["correct"] for r in rows] == [str(int(t == a)) for t, a in zip(truths, answers)]
    assert list(rows[0]) == ["learner", "quiz", "mode", "question", "truth", "answer", "correct", "difficulty", "ms"]
    s = client.get(f"/api/quiz/{quiz}/summary").json()
    right = sum(t == a for t, a in zip(truths, answers))
    assert s["answered"] == 4 and s["correct"] == right
    assert sum(v["answered"] for v in s["by_class"].values()) == 4
    assert sum(v["correct"] for v in s["by_difficulty"].values()) == right
    assert client.get("/api/teach/results.csv").text.count("\n") == 5


def test_same_seed_same_questions_other_seed_differs(client):
    def images(seed, learner):
        out = start(client, seed=seed, learner=learner, questions=3)
        quiz, q, imgs = out["quiz"], out["question"], []
        while q is not None:
            imgs.append(q["image"])
            res = client.post(f"/api/quiz/{quiz}/answer", json={"question": q["id"], "answer": 0}).json()
            q = res["next"]
        return imgs

    a, b = images(5, "ann"), images(5, "bob")
    assert a == b  # same answers, same staircase: the same tiles for every learner
    assert images(6, "ann") != a


def test_staircase_moves_toward_boundary_and_back():
    quiz = Quiz("q", "ann", "class", 8, 0)
    levels = []
    for correct in (True, True, True, False, True, True, True, True):
        q = quiz.plan(quiz.candidates(len(quiz.asked))[0])
        levels.append(q.difficulty)
        quiz.record(q, q.truth if correct else 1 - q.truth)
    assert levels == [LEVELS[0], LEVELS[1], LEVELS[2], LEVELS[3], LEVELS[2], LEVELS[3], LEVELS[4], LEVELS[4]]
    assert all(min(q.t, 1 - q.t) == pytest.approx(q.difficulty) for q in quiz.asked)


def test_answer_never_reaches_the_page_before_it_is_given(client):
    out = start(client, questions=6)
    text = json.dumps(out)
    for key in ('"truth"', '"t"', '"seed"', '"cls"', '"end"', '"difficulty"', '"answer"'):
        assert key not in text
    q = out["question"]
    assert q["image"].startswith("data:image/png;base64,")  # no URL that could name the class
    page = client.get("/teach")
    assert page.status_code == 200 and '<script src="static/teach.js"></script>' in page.text
    assert page.text.count("<script") == 1  # no inline script (CSP 'self')
    assert client.get("/static/teach.js").status_code == 200 and client.get("/static/teach.css").status_code == 200


def test_errors_are_4xx(client, tmp_path):
    out = start(client, questions=2)
    quiz, q = out["quiz"], out["question"]
    post = lambda path, body: client.post(path, json=body).status_code  # noqa: E731
    assert post("/api/quiz/nope/answer", {"question": q["id"], "answer": 0}) == 404
    assert post(f"/api/quiz/{quiz}/answer", {"question": "nope", "answer": 0}) == 404
    assert post(f"/api/quiz/{quiz}/answer", {"question": q["id"], "answer": 2}) == 422
    assert post(f"/api/quiz/{quiz}/answer", {"question": q["id"], "answer": -1}) == 422
    assert post(f"/api/quiz/{quiz}/answer", {"question": q["id"], "answer": "real"}) == 422
    assert post(f"/api/quiz/{quiz}/answer", {"question": q["id"], "answer": True}) == 422
    assert post(f"/api/quiz/{quiz}/answer", {"question": q["id"], "answer": 1}) == 200
    assert post(f"/api/quiz/{quiz}/answer", {"question": q["id"], "answer": 1}) == 409  # double answer
    for bad in ("../x", "a/b", ".hidden", "", "x" * 65, "a b"):
        assert post("/api/quiz", {"learner": bad, "mode": "class", "questions": 2, "seed": 0}) in (400, 422), bad
    assert post("/api/quiz", {"learner": "ann", "mode": "real", "questions": 2, "seed": 0}) == 400  # no --real
    assert post("/api/quiz", {"learner": "ann", "mode": "other", "questions": 2, "seed": 0}) == 422
    assert post("/api/quiz", {"learner": "ann", "mode": "class", "questions": 0, "seed": 0}) == 422
    assert client.get("/api/quiz/nope/summary").status_code == 404
    assert not (tmp_path / "x.csv").exists() and sorted(p.name for p in (tmp_path / "results").iterdir()) == ["ann.csv"]


def test_answers_survive_a_restart_and_class_summary(tmp_path):
    with make_client(tmp_path) as c:
        out = start(c, learner="ann", questions=2, label="pre")
        quiz = out["quiz"]
        res = c.post(f"/api/quiz/{quiz}/answer", json={"question": out["question"]["id"], "answer": 0}).json()
        c.post(f"/api/quiz/{quiz}/answer", json={"question": res["next"]["id"], "answer": 1})
    with make_client(tmp_path) as c:  # a new server on the same results folder
        assert c.get(f"/api/quiz/{quiz}/summary").json()["answered"] == 2
        out = start(c, learner="bob", questions=1, seed=8, label="post")
        c.post(f"/api/quiz/{out['quiz']}/answer", json={"question": out["question"]["id"], "answer": 1})
        s = c.get("/api/teach/summary").json()
        assert s["answered"] == 3 and set(s["by_learner"]) == {"ann", "bob"} and set(s["by_label"]) == {"pre", "post"}
        assert c.get("/api/teach/summary", params={"learner": "ann"}).json()["answered"] == 2
        assert c.get("/api/teach/summary", params={"learner": "../x"}).status_code == 400
    assert len(read_rows(tmp_path / "results" / "ann.csv")) == 2


class StubClassifier:
    """Categorical 'classifier' answering fixed predictions [[p_start], [p_end]] for class 1."""

    def __init__(self, p_start, p_end):
        self.tile_px, self.tile_um, self.model_type, self.n_outputs = 16, 100.0, "categorical", 2
        self.outcome_labels, self.params, self.p = ["a", "b"], {}, (p_start, p_end)

    def predict(self, x):
        return np.array([[1 - p, p] for p in self.p], np.float32)


def test_concordance_rule():
    from synthhist.workbench.scores import Scores
    from synthhist.workbench.teach import Teacher

    r = toy_renderer()
    for p, expected in (((0.1, 0.9), True), ((0.4, 0.6), True), ((0.9, 0.1), False), ((0.6, 0.7), False)):
        r.clf = StubClassifier(*p)
        assert Teacher(r, Scores("unused"), []).concordant(3, 0, 1) == expected, p


def test_concordant_seeds_only_with_a_classifier(tmp_path, monkeypatch):
    from synthhist.workbench.teach import Teacher

    monkeypatch.setattr(Teacher, "concordant", lambda self, seed, a, b: seed % 3 == 0)
    for clf, all_concordant in ((True, True), (False, False)):
        with make_client(tmp_path, renderer=toy_renderer(clf=clf)) as c:
            out = start(c, questions=5)
            quiz, q, seeds = out["quiz"], out["question"], []
            while q is not None:
                res = c.post(f"/api/quiz/{quiz}/answer", json={"question": q["id"], "answer": 0}).json()
                seeds.append(res["feedback"]["seed"])
                q = res["next"]
        assert all(s % 3 == 0 for s in seeds) == all_concordant, seeds


def test_real_or_synthetic(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    for k in range(3):
        Image.fromarray(np.full((40, 50, 3), 60 * k, np.uint8)).save(real / f"t{k}.png")
    with make_client(tmp_path, real=real) as c:
        out = start(c, mode="real", questions=6)
        quiz, q = out["quiz"], out["question"]
        assert q["choices"] == ["real", "synthetic"]
        truths = []
        while q is not None:
            assert c.post(f"/api/quiz/{quiz}/answer", json={"question": q["id"], "answer": 1}).status_code == 422
            res = c.post(f"/api/quiz/{quiz}/answer", json={"question": q["id"], "answer": "real"}).json()
            truths.append(res["truth"])
            q = res["next"]
    assert set(truths) <= {"real", "synthetic"} and "real" in truths
    rows = read_rows(tmp_path / "results" / "ann.csv")
    assert [r["truth"] for r in rows] == truths and all(r["answer"] == "real" for r in rows)


def test_real_tiles_from_tfrecords_and_bad_folders(tmp_path):
    import io
    import zlib

    from synthhist.errors import UserError
    from synthhist.wsi.tfrecord import write_tfrecord
    from synthhist.workbench.teach import read_real_tiles, real_tile

    def png(img):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        return buf.getvalue()

    (tmp_path / "tf").mkdir()
    write_tfrecord(tmp_path / "tf" / "s1.tfrecords",
                   [{"slide": "s1", "image_raw": png(np.full((48, 48, 3), 9 * k, np.uint8)), "loc_x": k, "loc_y": 0}
                    for k in range(4)])
    tiles = read_real_tiles(tmp_path / "tf")
    assert len(tiles) == 4 and real_tile(tiles[2], 32).shape == (32, 32, 3) and real_tile(tiles[2], 32)[0, 0, 0] == 18
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .tfrecords or image files"):
        read_real_tiles(tmp_path / "empty")
    with pytest.raises(UserError, match="could not be decoded"):
        real_tile(b"not an image", 32)
    header = png(np.zeros((1, 1, 3), np.uint8))
    ihdr = b"IHDR" + (5000).to_bytes(4, "big") * 2 + header[24:29]  # a 1-px PNG claiming 5000 x 5000 px
    big = header[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + header[33:]
    with pytest.raises(UserError, match="larger than"):
        real_tile(big, 32)
    with pytest.raises(UserError):
        create_app(WorkbenchConfig(data_dirs=[tmp_path], results_dir=tmp_path / "r", real=tmp_path / "empty"),
                   renderer=toy_renderer())


def test_lesson_steps_and_strip(client, tmp_path):
    (tmp_path / "saved_seeds.csv").write_text("seed,mode,cls,end,note\n3,blend,0,1,\"look at the nuclei, here\"\n9,class,1,,\n")
    steps = client.post("/api/lesson", json={"file": "saved_seeds.csv"}).json()["steps"]
    assert steps == [{"seed": 3, "cls": 0, "end": 1, "note": "look at the nuclei, here"},
                     {"seed": 9, "cls": 1, "end": None, "note": ""}]
    strip = client.get("/api/teach/strip", params={"seed": 3, "cls": 0, "end": 1}).json()["strip"]
    assert [s["t"] for s in strip] == [0.0, 0.25, 0.5, 0.75, 1.0]
    plain = client.get("/api/teach/strip", params={"seed": 9, "cls": 1}).json()  # a plain-class row
    assert (plain["cls"], plain["end"]) == (1, 0)
    assert client.get("/api/teach/strip", params={"seed": 3, "cls": 0, "end": 5}).status_code == 400
    assert client.post("/api/lesson", json={"file": "../etc/passwd"}).status_code == 400
    (tmp_path / "bad.csv").write_text("seed,note\nabc,x\n")
    assert client.post("/api/lesson", json={"file": "bad.csv"}).status_code == 400


def test_teach_routes_follow_the_token_origin_and_json_rules(tmp_path):
    config = WorkbenchConfig(data_dirs=[tmp_path], allowed_hosts=LOOPBACK_HOSTS, results_dir=tmp_path / "results",
                             token="secret")
    body = {"learner": "ann", "mode": "class", "questions": 1, "seed": 0}
    with TestClient(create_app(config, renderer=toy_renderer()), base_url=BASE) as c:
        assert c.post("/api/quiz", json=body).status_code == 401
        assert c.get("/teach").status_code == 401 and c.get("/api/teach/summary").status_code == 401
        auth = {"X-Workbench-Token": "secret"}
        assert c.post("/api/quiz", json=body, headers={**auth, "Origin": "http://evil.example"}).status_code == 403
        assert c.post("/api/quiz", content=json.dumps(body), headers={**auth, "Content-Type": "text/plain"}).status_code == 415
        r = c.post("/api/quiz", json=body, headers={**auth, "Origin": BASE})
        assert r.status_code == 200 and "content-security-policy" in r.headers
    assert not (tmp_path / "results").exists()  # nothing answered, nothing written
