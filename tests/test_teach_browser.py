"""End to end: a learner takes a quiz on the teach page of workbench.py, in Debian's chromium through Playwright."""

from __future__ import annotations

import csv
import json

import pytest

from test_workbench_browser import CHROMIUM, CHROMIUM_ARGS, wait_for, workbench_server

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not installed")]


@pytest.fixture
def server(tmp_path):
    """workbench.py with a golden 32-px network, a small classifier and a results folder; yields the printed URL."""
    with workbench_server(tmp_path, "teach-test-token", "--results-dir", str(tmp_path / "results")) as url:
        yield url


def test_learner_takes_a_quiz(server, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    answers, truths, sent = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server)  # sets the token cookie
        page.goto(server.split("/?")[0] + "/teach")
        page.fill("#learner", "alice")
        page.fill("#questions", "5")
        page.fill("#quiz-seed", "3")
        with page.expect_response(lambda r: r.url.endswith("/api/quiz")) as started:
            page.click("#start")
        sent.append(started.value.json())
        for k in range(5):
            wait_for(page, "() => !document.getElementById('question-view').hidden"
                           " && document.querySelectorAll('#choices button:not([disabled])').length >= 2")
            assert page.get_attribute("#question-image", "src").startswith("data:image/png;base64,")
            assert page.is_hidden("#feedback-view") and "The answer" not in page.content()
            choice = k % 2
            with page.expect_response(lambda r: "/answer" in r.url) as answered:
                page.click(f"#choices button[data-value='{choice}']")
            res = answered.value.json()
            answers.append(choice)
            truths.append(res["truth"])
            if res["next"] is not None:
                sent.append({"question": res["next"]})
            wait_for(page, "() => !document.getElementById('feedback-view').hidden")
            assert page.locator("#strip figure").count() == 6 and page.locator("#strip figure.here").count() == 1
            assert "The answer" in page.text_content("#feedback-text")
            assert "Classifier:" in page.text_content("#feedback-prediction")
            page.click("#next")
        wait_for(page, "() => !document.getElementById('summary-view').hidden")
        right = sum(t == a for t, a in zip(truths, answers))
        assert page.text_content("#summary-title") == f"Your score: {right} of 5"
        page.screenshot(path=str(tmp_path / "teach.png"), full_page=True)

        (tmp_path / "saved_seeds.csv").write_text("seed,mode,cls,end,note\n4,blend,0,1,nuclei first\n8,class,1,,then stroma\n")
        page.fill("#lesson-file", "saved_seeds.csv")  # a lesson: the instructor's saved seeds, stepped through
        page.click("#lesson-load")
        wait_for(page, "() => document.getElementById('lesson-note').textContent === 'nuclei first'")
        assert page.locator("#lesson-strip figure").count() == 5 and "1 / 2" in page.text_content("#lesson-pos")
        page.click("#lesson-next")
        wait_for(page, "() => document.getElementById('lesson-note').textContent === 'then stroma'")
        assert "class 1 → class 0" in page.text_content("#lesson-title")
        browser.close()
    for msg in sent:  # what reached the page before each answer: no truth, no blend position or seed
        text = json.dumps(msg)
        assert all(key not in text for key in ('"truth"', '"t"', '"seed"', '"cls"', '"difficulty"')), text
    with open(tmp_path / "results" / "alice.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["truth"]) for r in rows] == truths and [int(r["answer"]) for r in rows] == answers
    assert [r["correct"] for r in rows] == [str(int(t == a)) for t, a in zip(truths, answers)]
    assert not errors, errors
