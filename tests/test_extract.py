"""Tile extraction on small synthetic pyramidal slides: geometry, ROI, QC, filters, bad input, resume."""

import io
import json
import re

import numpy as np
import openslide
import pyvips
import pytest
from PIL import Image
from slide_fixtures import HEIGHT, WIDTH, quadrant_slide, tissue_slide, write_roi_csv

from synthhist.errors import UserError
from synthhist.wsi import qc
from synthhist.wsi.extract import extract_tiles
from synthhist.wsi.geometry import choose_level, tile_geometry
from synthhist.wsi.roi import points_in_polygons, read_rois
from synthhist.wsi.synthetic import write_synthetic_slide
from synthhist.wsi.tfrecord import read_index, read_tfrecord

NO_FILTERS = dict(grayspace_fraction=1.0, whitespace_fraction=1.0)


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    d = tmp_path_factory.mktemp("slides")
    return {"quad": quadrant_slide(d / "quad.tif"), "tissue": tissue_slide(d / "tissue.tif", seed=1),
            "nompp": tissue_slide(d / "nompp.tif", mpp=None)}


def _tiles(path):
    recs = list(read_tfrecord(path))
    return {(r["loc_x"], r["loc_y"]): np.asarray(Image.open(io.BytesIO(r["image_raw"]))) for r in recs}


def _block_centres(x0, x1, y0, y1, full=256):
    return {(x + full // 2, y + full // 2) for x in range(x0, x1, full) for y in range(y0, y1, full)}


# --- geometry ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mpp,tile_px,tile_um,level,extract", [
    (0.2520, 299, 302, 1, 299), (0.2500, 299, 302, 1, 302), (0.2527, 299, 302, 0, 1195), (0.504, 299, 302, 0, 599),
    (0.25, 512, 400, 0, 1600), (0.25, 512, 302, 0, 1208)])
def test_spec_worked_examples(mpp, tile_px, tile_um, level, extract):
    g = tile_geometry((50_000, 40_000), (1.0, 4.0, 16.0, 32.0), mpp, tile_px, tile_um)
    assert (g.level, g.extract_px) == (level, extract)
    assert g.xs[1] == g.full_extract_px == int(tile_um / mpp) and g.xs[-1] + g.full_extract_px <= 50_000


def vips_lanczos(region: Image.Image, px: int) -> np.ndarray:
    """A square RGB region resized to px by libvips' lanczos3, as slideflow resizes tiles (docs/slideflow.md §2.2)."""
    out = pyvips.Image.new_from_array(np.asarray(region)).resize(px / region.width, kernel="lanczos3")
    return out.numpy()


def test_choose_level_is_strictly_smaller():
    assert choose_level((1.0, 4.0, 16.0), 4.0) == 0
    assert choose_level((1.0, 4.0, 16.0), 4.01) == 1
    assert choose_level((1.0, 4.0, 16.0), 100) == 2
    assert choose_level((1.0, 4.0, 16.0), 0.5) == 0


def test_grid_positions_and_pixels(slides, tmp_path):
    # 64 px / 128 um at 0.5 um/px: 256 level-0 px per tile, ds 4 -> level 0, read 256 -> resize to 64
    rep = extract_tiles([slides["tissue"]], tmp_path, 64, 128, workers=1, **NO_FILTERS)
    assert rep.loc[0, "status"] == "extracted" and rep.loc[0, "grid_tiles"] == 6 * 4 == rep.loc[0, "tiles_kept"]
    tiles = _tiles(tmp_path / "tissue.tfrecords")
    assert set(tiles) == _block_centres(0, 1536, 0, 1024)   # loc = centre in level-0 px
    osr = openslide.OpenSlide(str(slides["tissue"]))
    want = vips_lanczos(osr.read_region((256, 512), 0, (256, 256)).convert("RGB"), 64)
    np.testing.assert_array_equal(tiles[(384, 640)], want)
    # 64 px / 128.5 um: 257 px, ds 4.016 -> level 1, read int(257 // 4) = 64 px, no resize; tiles fully inside
    rep = extract_tiles([slides["tissue"]], tmp_path / "l1", 64, 128.5, workers=1, **NO_FILTERS)
    assert rep.loc[0, "tiles_kept"] == 5 * 3   # x: 0..1279 (+257 <= 1536), y: 0..514 (+257 <= 1024)
    tiles = _tiles(tmp_path / "l1" / "tissue.tfrecords")
    assert set(tiles) == {(x + 128, y + 128) for x in range(0, 1280, 257) for y in range(0, 515, 257)}
    np.testing.assert_array_equal(tiles[(257 + 128, 514 + 128)],
                                  np.asarray(osr.read_region((257, 514), 1, (64, 64)).convert("RGB")))
    manifest = json.loads((tmp_path / "l1" / "manifest.json").read_text())
    assert manifest == {"tissue.tfrecords": {"total": 15}}
    assert len(read_index(tmp_path / "l1" / "tissue.tfrecords")) == 15


# --- ROI -----------------------------------------------------------------------------------------


def test_roi_methods(slides, tmp_path):
    roi = tmp_path / "roi"
    # a rectangle around x 1024-2048 (all rows) + a 2-point "polygon" that must be ignored
    write_roi_csv(roi / "quad.csv", {"ROI_0": [(1000, -10), (2050, -10), (2050, 2100), (1000, 2100)],
                                     "ROI_1": [(0, 0), (500, 500)]})
    assert len(read_rois(roi / "quad.csv", "quad")) == 1
    got = {}
    for method in ("inside", "outside", "auto", "ignore"):
        rep = extract_tiles([slides["quad"]], tmp_path / method, 64, 128, roi_dir=roi, roi_method=method,
                            workers=1, **NO_FILTERS)
        got[method] = set(_tiles(tmp_path / method / "quad.tfrecords"))
        assert rep.loc[0, "tiles_kept"] + rep.loc[0, "dropped_roi"] == 96
    assert got["inside"] == _block_centres(1024, 2048, 0, 2048) == got["auto"]
    assert got["outside"] == got["ignore"] - got["inside"] and len(got["ignore"]) == 96
    # auto without an ROI file = whole slide; inside without one = skipped, with the reason
    rep = extract_tiles([slides["tissue"]], tmp_path / "auto2", 64, 128, roi_dir=roi, workers=1, **NO_FILTERS)
    assert rep.loc[0, "tiles_kept"] == 24


def test_point_in_polygon_concave():
    u_shape = np.array([(0, 0), (30, 0), (30, 30), (20, 30), (20, 10), (10, 10), (10, 30), (0, 30)], float)
    pts = np.array([(5, 5), (15, 20), (25, 25), (15, 5), (35, 5), (-1, 5)], float)
    assert points_in_polygons(pts, [u_shape]).tolist() == [True, False, True, True, False, False]


# --- QC and pixel filters --------------------------------------------------------------------------


@pytest.mark.parametrize("method,dropped_blocks", [
    ("otsu", ["blank", "gray", "white"]), ("blur", ["blank", "blurred"]), ("both", ["blank", "gray", "white", "blurred"])])
def test_qc_modes(slides, tmp_path, method, dropped_blocks):
    rep = extract_tiles([slides["quad"]], tmp_path, 64, 128, qc=method, workers=1, **NO_FILTERS)
    blocks = {"blank": (0, 1024, 0, 1024), "blurred": (2048, 3072, 0, 1024), "gray": (0, 1024, 1024, 2048),
              "white": (2048, 3072, 1024, 2048)}
    want = _block_centres(0, WIDTH, 0, HEIGHT)
    for b in dropped_blocks:
        want -= _block_centres(*blocks[b])
    assert set(_tiles(tmp_path / "quad.tfrecords")) == want
    assert rep.loc[0, "dropped_qc"] == 16 * len(dropped_blocks)


# BAND slide (4096 x 2048 px at 0.5 um/px; 64 px / 128 um tiles = 256 level-0 px, a 16 x 8 grid): tissue on
# x 0-2592, glass beyond, a blurred band x 1056-1600; the band and the glass edge cut tile columns off the grid
# (column 4: 7/8 blurred, column 6: 1/4 blurred, column 10: 7/8 glass), so the 60% footprint rule decides them.
BAND = [("blank", (2592, 0, 4096, 2048)), ("blurred", (1056, 0, 1600, 2048))]
BAND_ROI = {"tumour": [(256, 256), (2304, 256), (2304, 1792), (256, 1792)]}   # inside the tissue


def _band_expected(qc_method, roi):
    """Tile centres the rule keeps: centre inside the ROI (if any), bad fraction of the footprint <= 0.6."""
    bad = np.zeros((2048, 4096), bool)
    if qc_method in ("otsu", "both"):
        bad[:, 2592:] = True
    if qc_method in ("blur", "both"):
        bad[:, 2592:] = bad[:, 1056:1600] = True
    keep = set()
    for x in range(0, 4096, 256):
        for y in range(0, 2048, 256):
            c = (x + 128, y + 128)
            inside = roi is None or (256 < c[0] < 2304 and 256 < c[1] < 1792)
            if inside and bad[y:y + 256, x:x + 256].mean() <= 0.6:
                keep.add(c)
    return keep


@pytest.fixture(scope="module")
def band_slide(tmp_path_factory):
    d = tmp_path_factory.mktemp("band")
    return write_synthetic_slide(d / "band.tif", 4096, 2048, 0.5, BAND), write_roi_csv(d / "roi" / "band.csv", BAND_ROI).parent


@pytest.mark.parametrize("with_roi", [False, True])
@pytest.mark.parametrize("method", ["otsu", "blur", "both"])
def test_qc_keeps_the_tissue_with_and_without_rois(band_slide, tmp_path, method, with_roi):
    slide, roi = band_slide
    rep = extract_tiles([slide], tmp_path, 64, 128, roi_dir=roi if with_roi else None, qc=method, workers=1,
                        **NO_FILTERS)
    want = _band_expected(method, roi if with_roi else None)
    assert set(_tiles(tmp_path / "band.tfrecords")) == want
    r = rep.iloc[0]   # the per-slide report: each filter's drops
    assert r.grid_tiles == 128 and r.tiles_kept == len(want)
    assert r.dropped_roi == (128 - 48 if with_roi else 0)
    assert r.dropped_qc == 128 - r.dropped_roi - len(want)
    if with_roi:   # all 48 tissue tiles in the ROI are kept, but the two (7/8 or all) blurred columns
        assert r.tiles_kept == (48 if method == "otsu" else 48 - 2 * 6)


def test_blur_mask_flags_the_blurred_band_and_nothing_else(band_slide):
    osr = openslide.OpenSlide(str(band_slide[0]))
    mask = qc.slide_qc_mask(osr, 0.5, "blur")          # at 4 um/px: 1 px = 8 level-0 px
    assert mask.shape == (256, 512)
    margin = 6   # 2 sigma of the Gaussian (48 level-0 px): the edges between regions are sharp
    assert mask[:, 132 + margin:200 - margin].all()      # the blurred band (x 1056-1600)
    assert mask[:, 324 + margin:].all()                   # glass is smooth too
    assert not mask[:, :132 - margin].any() and not mask[:, 200 + margin:324 - margin].any()   # tissue: sharp


def test_all_tissue_slide_keeps_its_tissue(slides, tmp_path):
    # no background at all: Otsu would split the tissue in two classes
    rep = extract_tiles([slides["tissue"]], tmp_path, 64, 128, qc="otsu", workers=1, **NO_FILTERS)
    assert (rep.loc[0, "tiles_kept"], rep.loc[0, "dropped_qc"]) == (24, 0)
    osr = openslide.OpenSlide(str(slides["tissue"]))
    assert not qc.slide_qc_mask(osr, 0.5, "otsu").any()
    # an ROI over the whole of it, qc both: still every tile
    roi = write_roi_csv(tmp_path / "roi" / "tissue.csv", {"all": [(-5, -5), (1600, -5), (1600, 1100), (-5, 1100)]})
    rep = extract_tiles([slides["tissue"]], tmp_path / "roi_both", 64, 128, roi_dir=roi.parent, qc="both", workers=1,
                        **NO_FILTERS)
    assert (rep.loc[0, "tiles_kept"], rep.loc[0, "dropped_qc"], rep.loc[0, "dropped_roi"]) == (24, 0, 0)


def test_mostly_tissue_slide_still_loses_its_glass(tmp_path):
    # 1/24 glass: too little for Otsu to find a background class, the glass guard drops it
    slide = write_synthetic_slide(tmp_path / "edge.tif", 1536, 1024, 0.5, [("blank", (1280, 768, 1536, 1024))])
    rep = extract_tiles([slide], tmp_path / "o", 64, 128, qc="otsu", workers=1, **NO_FILTERS)
    assert set(_tiles(tmp_path / "o" / "edge.tfrecords")) == _block_centres(0, 1536, 0, 1024) - {(1408, 896)}
    assert rep.loc[0, "dropped_qc"] == 1


def test_background_threshold_from_the_histogram():
    rng = np.random.default_rng(0)
    glass, tissue = rng.integers(0, 10, 5000), np.clip(rng.normal(120, 15, 5000), 60, 200).astype(int)
    t = qc.background_threshold(np.concatenate([glass, tissue]).astype(np.uint8))
    assert 9 <= t < 60                                              # two classes: Otsu between them
    t = qc.background_threshold(tissue.astype(np.uint8))
    assert t == int(qc.GLASS_SATURATION * 255)                      # one saturated class: only glass is background


def test_whitespace_and_grayspace(slides, tmp_path):
    rep = extract_tiles([slides["quad"]], tmp_path, 64, 128, grayspace_fraction=0.6, whitespace_fraction=0.5,
                        workers=1)
    r = rep.iloc[0]
    assert (r.dropped_whitespace, r.dropped_grayspace, r.tiles_kept) == (32, 16, 48)   # blank+white, gray
    assert set(_tiles(tmp_path / "quad.tfrecords")) == _block_centres(1024, 3072, 0, 1024) | _block_centres(1024, 2048, 1024, 2048)
    # the defaults: grayspace filter on (0.6), whitespace off (1.0) -> unsaturated blank/gray/white blocks go
    rep = extract_tiles([slides["quad"]], tmp_path / "d", 64, 128, workers=1)
    assert (rep.loc[0, "dropped_grayspace"], rep.loc[0, "dropped_whitespace"], rep.loc[0, "tiles_kept"]) == (48, 0, 48)


def test_png_tiles_are_lossless_and_cut_like_single_reads(slides, tmp_path):
    # 60 px / 150 um: 300 level-0 px = 75 px of level 1 resized to 60, read as runs of row neighbours; every
    # tile holds the pixels of its own read_region + libvips lanczos3 resize, bit for bit after the PNG round trip,
    # in a seeded order
    extract_tiles([slides["quad"]], tmp_path / "a", 60, 150, workers=1, **NO_FILTERS)
    recs = list(read_tfrecord(tmp_path / "a" / "quad.tfrecords"))
    osr = openslide.OpenSlide(str(slides["quad"]))
    assert len(recs) == 10 * 6
    for r in recs:
        x, y = r["loc_x"] - 150, r["loc_y"] - 150
        want = vips_lanczos(osr.read_region((x, y), 1, (75, 75)).convert("RGB"), 60)
        assert r["image_raw"].startswith(b"\x89PNG")
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r["image_raw"]))), want)
    grid_order = sorted(recs, key=lambda r: (r["loc_y"], r["loc_x"]))
    assert [r["loc_x"] for r in recs] != [r["loc_x"] for r in grid_order]          # shuffled ...
    extract_tiles([slides["quad"]], tmp_path / "b", 60, 150, workers=1, **NO_FILTERS)
    assert (tmp_path / "b" / "quad.tfrecords").read_bytes() == (tmp_path / "a" / "quad.tfrecords").read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]   # ... reproducibly, no temp left


def test_jpeg_tiles(slides, tmp_path):
    extract_tiles([slides["tissue"]], tmp_path, 32, 64, img_format="jpg", workers=1)
    rec = next(read_tfrecord(tmp_path / "tissue.tfrecords"))
    assert rec["image_raw"][:2] == b"\xff\xd8" and Image.open(io.BytesIO(rec["image_raw"])).size == (32, 32)


# --- bad input, parallel runs, resume ----------------------------------------------------------------


def test_bad_slides_are_reported_and_the_rest_continue(slides, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "garbage.svs").write_bytes(b"not a slide at all" * 100)
    data = slides["tissue"].read_bytes()
    (bad / "truncated.tif").write_bytes(data[: len(data) // 3])
    roi = tmp_path / "roi"
    (roi / "badroi.csv").parent.mkdir()
    (roi / "badroi.csv").write_text("name,x,y\nA,1,2\n")
    badroi = tissue_slide(bad / "badroi.tif")
    tiny = tissue_slide(bad / "tiny.tif", width=100, height=100)
    corrupt = write_synthetic_slide(bad / "corrupt.tif", 1536, 1024, 0.5, compression="zlib")
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 4: len(data) // 4 + 200_000] = bytes(200_000)   # headers intact, tile data broken
    corrupt.write_bytes(bytes(data))
    inputs = [bad / "garbage.svs", bad / "truncated.tif", slides["nompp"], badroi, tiny, corrupt, slides["tissue"]]
    rep = extract_tiles(inputs, tmp_path / "out", 64, 128, roi_dir=roi, workers=2, **NO_FILTERS)
    r = rep.set_index("slide")
    assert r.loc["tissue", "status"] == "extracted" and r.loc["tissue", "tiles_kept"] == 24
    for name, pattern in [("garbage", "garbage is unreadable"), ("truncated", "truncated is unreadable"),
                          ("corrupt", "corrupt failed while reading \\(OpenSlideError"),
                          ("nompp", "slide nompp has no MPP"), ("badroi", "badroi.*lacks column.*roi_name"),
                          ("tiny", "tiny.*smaller than one 256 px tile")]:
        assert r.loc[name, "status"] == "skipped", name
        assert re.search(pattern, r.loc[name, "reason"]), (name, r.loc[name, "reason"])
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tfrecords")) == ["tissue.tfrecords"]
    saved = list((tmp_path / "out" / "reports").glob("*.csv"))
    assert len(saved) == 1 and "no MPP" in saved[0].read_text()


def test_zero_tiles_is_never_silent(slides, tmp_path):
    roi = tmp_path / "roi"
    write_roi_csv(roi / "tissue.csv", {"far": [(5000, 5000), (6000, 5000), (6000, 6000)]})
    with pytest.raises(UserError, match="no tiles extracted.*no tile kept of 24.*roi 24"):
        extract_tiles([slides["tissue"]], tmp_path / "o", 64, 128, roi_dir=roi, roi_method="inside", workers=1)
    with pytest.raises(UserError, match="no ROI file"):
        extract_tiles([slides["quad"]], tmp_path / "o2", 64, 128, roi_dir=roi, roi_method="inside", workers=1)
    assert not list((tmp_path / "o").glob("*.tfrecords"))


def test_option_errors(slides, tmp_path):
    for kwargs, msg in [({"roi_method": "inside"}, "needs an ROI folder"), ({"qc": "magic"}, "unknown qc"),
                        ({"img_format": "gif"}, "unknown img_format"), ({"roi_dir": tmp_path / "x"}, "ROI folder not found"),
                        ({"roi_method": "sideways"}, "unknown roi_method")]:
        with pytest.raises(UserError, match=msg):
            extract_tiles([slides["tissue"]], tmp_path, 64, 128, **kwargs)
    with pytest.raises(UserError, match="share the name"):
        extract_tiles([slides["tissue"], tmp_path / "tissue.svs"], tmp_path, 64, 128)


def test_resume_skips_finished_and_redoes_interrupted(slides, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".quad.tfrecords.abc.tmp").write_bytes(b"half a slide")   # an interrupted earlier run
    extract_tiles([slides["tissue"]], out, 64, 128, workers=1)
    before = (out / "tissue.tfrecords").stat().st_mtime_ns
    rep = extract_tiles([slides["tissue"], slides["quad"]], out, 64, 128, workers=2)
    r = rep.set_index("slide")
    assert r.loc["tissue", "status"] == "done before" and r.loc["tissue", "tiles_kept"] == 24
    assert r.loc["quad", "status"] == "extracted" and (out / "tissue.tfrecords").stat().st_mtime_ns == before
    assert json.loads((out / "manifest.json").read_text()) == {"quad.tfrecords": {"total": 48},
                                                               "tissue.tfrecords": {"total": 24}}
