"""The report pieces without training: manifest expansion, the builder
on fabricated run dirs (every section, hyperparameter tables, training curves, the baselines'
sources, failed and missing runs, a DSN column), and Chromium rendering."""

from __future__ import annotations

import html
import json
import re
import shutil
import statistics
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from genda.errors import ConfigError
from genda.report import doc as D
from genda.report.build import SECTIONS, build_report
from genda.report.manifest import DEFAULT_MANIFEST, load_manifest
from genda.report.records import mean_std, seed_list
from genda.tasks.base import Every
from genda.tasks.ddim_faces import DDIMFaceTask
from genda.tasks.diffusion import ConditionalDDPMTask
from genda.tasks.gan import GANTask
from genda.tasks.uda import ADDATask, UDATask
from genda.tasks.vae import VAETask
from genda.train.artifacts import write_index

from .conftest import EXPERIMENTS

MANIFEST = {
    "group": "t",
    "seeds": {"smoke": 1, "cpu": 2, "full": 3},
    "runs": {
        "gan_a": {"experiment": "dcgan_a", "item": "gan", "label": "A"},
        "gan_b": {"experiment": "dcgan_b", "item": "gan", "label": "B"},
        "vae": {"experiment": "vae_faces", "item": "vae"},
        "ddpm": {"experiment": "ddpm_digits", "item": "ddpm"},
        "ddim": {
            "experiment": "ddim_faces",
            "item": "ddim",
            "sweep": {"model.sampler.eta": [0.0, 0.5, 1.0]},
        },
        "uda": {
            "experiment": "dann_mnistm_usps",
            "item": "uda",
            "pair": "M→U",
            "sweep": {"model.mode": ["source_only", "dann", "target_only"]},
        },
        "adda": {
            "experiment": "adda_mnistm_usps",
            "item": "uda",
            "pair": "M→U",
            "seeds": {"cpu": 1},
        },
        "clf": {"experiment": "classifier_mnist", "item": "classifier", "scales": ["cpu"]},
    },
}


GAN_MODEL = {
    "_target_": "genda.tasks.gan.GANTask",
    "loss": "bce",
    "generator": {"_target_": "genda.models.dcgan.Generator", "nz": 100, "ngf": 64},
    "discriminator": {"_target_": "genda.models.dcgan.Discriminator", "ndf": 64},
    "g_optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.0002, "betas": [0.5, 0.999]},
    "d_optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.0002, "betas": [0.5, 0.999]},
    "ema_decay": 0.999,
}


def _manifest(tmp_path: Path, spec: dict = MANIFEST):
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    return load_manifest(path)


def test_expand_seeds_sweeps_scales(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    runs = m.expand("cpu", tmp_path / "r")
    names = [r.name for r in runs]
    assert (
        names.count("gan_a/seed0") == names.count("gan_a/seed1") == 1 and "gan_a/seed2" not in names
    )
    assert [r.name for r in runs if r.entry.id == "adda"] == ["adda/seed0"]
    assert "ddim/eta_0.5/seed1" in names and "uda/mode_target_only/seed0" in names
    assert runs[0].run_dir == tmp_path / "r" / "cpu" / "gan_a" / "seed0"
    eta = next(r for r in runs if r.name == "ddim/eta_0.5/seed1")
    assert eta.overrides() == ["experiment=ddim_faces", "model.sampler.eta=0.5", "seed=1"]
    assert not any(r.entry.id == "clf" for r in m.expand("smoke", tmp_path))
    assert len(m.expand("smoke", tmp_path)) == 2 + 1 + 1 + 3 + 3 + 1
    assert {r.entry.id for r in m.expand("full", tmp_path, only="uda")} == {"uda", "adda"}
    assert len(m.expand("full", tmp_path, only="vae", seeds=2)) == 2
    with pytest.raises(ConfigError, match="--only 'nope'"):
        m.expand("cpu", tmp_path, only="nope")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"x": {"experiment": "dcgan_a", "item": "nope"}}, "item 'nope'"),
        ({"x": {"item": "gan"}}, "needs an 'experiment'"),
        ({"x": {"experiment": "dcgan_a", "item": "gan", "seeds": "two"}}, "seeds must be"),
        ({"x": {"experiment": "dcgan_a", "item": "gan", "scales": ["gpu"]}}, "scales must be"),
    ],
)
def test_bad_manifest_names_file_and_entry(tmp_path: Path, bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        _manifest(tmp_path, {"runs": bad})
    assert "manifest.yaml" in str(e.value)


def test_repo_manifest_names_existing_experiments(tmp_path: Path) -> None:
    m = load_manifest(DEFAULT_MANIFEST)
    items = {e.item for e in m.entries}
    assert {"gan", "vae", "ddpm", "ddim", "uda"} <= items
    missing = sorted({e.experiment for e in m.entries} - set(EXPERIMENTS))
    assert not missing, f"manifest names unknown experiments {missing}"
    modes = {v for e in m.entries for k, vals in e.sweep for v in vals if k == "model.mode"}
    assert modes == {"source_only", "dann", "target_only"}
    assert len(m.expand("smoke", tmp_path)) == len({r.run_dir for r in m.expand("smoke", tmp_path)})


# -- the builder on fabricated run dirs ----------------------------------------------------
def _png(path: Path, w: int, h: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def _fake_run(
    run, domain, summary: dict, files: dict[str, object], state: str = "complete", extra=None
):
    d = run.run_dir
    (d / "artifacts").mkdir(parents=True, exist_ok=True)
    data = (
        {"source": {"domain": domain[0]}, "target": {"domain": domain[1]}}
        if isinstance(domain, tuple)
        else {"domain": domain}
    )
    config = {"data": data, "seed": run.seed, "trainer": {"max_steps": 3, "precision": "32-true"}}
    (d / "config.yaml").write_text(yaml.safe_dump({**config, **(extra or {})}))
    flags = (
        {"data/source/embedded": True, "data/target/embedded": True}
        if isinstance(domain, tuple)
        else {"data/embedded": True}
    )
    rows = [{"step": 0, **flags}] + [
        {"step": s, "train/recon": 1.0 / s, "train/kl": 5.0 + s, "train/loss": 1.0 / s,
         "val/loss": 1.2 / s, "train/d_loss": 1.4 - s / 10, "train/g_loss": 0.7 + s / 10,
         "train/d_real": 2.0 / s, "train/d_fake": -2.0 / s, "train/cls_loss": 2.3 / s,
         "train/domain_loss": 0.69, "train/lambda": s / 3}
        for s in (1, 2, 3)
    ]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / "status.json").write_text(json.dumps({"state": state, "step": 3}))
    (d / "summary.json").write_text(json.dumps(summary))
    for i, (name, content) in enumerate(files.items()):
        p = d / "artifacts" / name
        if content == "png":
            _png(p, 40, 20, i)
        elif isinstance(content, str):
            p.write_text(content)
        elif name.endswith(".npz"):
            np.savez(p, **content)
        else:
            p.write_text(json.dumps(content))
    if state == "complete":  # a finished run's task writes artifacts/index.json from its ARTEFACTS
        write_index(d / "artifacts", _task(run))


TASKS = {"gan": GANTask, "vae": VAETask, "ddpm": ConditionalDDPMTask, "ddim": DDIMFaceTask, "uda": UDATask}


def _task(run):
    return ADDATask if run.entry.experiment.startswith("adda") else TASKS[run.entry.item]


def _fake_runs(m, root: Path) -> None:
    for run in m.expand("cpu", root):
        e, seed = run.entry.id, run.seed
        if e.startswith("gan"):
            _fake_run(
                run,
                "faces_embedded",
                {"fid": 100.0 + seed, "kid": 0.01 + seed / 1000, "kid_std": 0.002,
                 "face_score_hog": 50.0, "face_score_real_hog": 90.0, "diversity": 0.8},
                {
                    "first32.png": "png",
                    "eval.json": {"n_real": 64, "n_fake": 16, "face_detector": "hog"},
                    "summary_generator.txt": "G layers",
                    "summary_discriminator.txt": "D layers",
                },
                extra={"model": GAN_MODEL},
            )
        elif e == "vae":
            rng = np.random.default_rng(0)
            _fake_run(
                run,
                "faces_embedded",
                {"fid": 200.0, "recon": 0.1},
                {
                    "reconstructions.png": "png",
                    "samples32.png": "png",
                    "summary_vae.txt": "V",
                    "reconstruction_mse.json": {"mse": [0.1] * 10, "mse_255": [1625.0] * 10},
                    "latents.npz": {
                        "mu": rng.normal(size=(40, 8)),
                        "attr_Blond_Hair": rng.integers(0, 2, 40),
                    },
                },
            )
        elif e == "ddpm":
            _fake_run(
                run,
                "mnistm",
                {"accuracy": 0.9, "n_images": 1000},
                {
                    "grid.png": "png",
                    "reverse_process.png": "png",
                    "eval.json": {
                        "per_digit": {str(d): 0.9 for d in range(10)},
                        "evaluator": "lenet",
                    },
                },
            )
        elif e == "ddim":
            eta = float(dict(run.variant)["model.sampler.eta"])
            files = {f"ddim/{i:02d}.png": "png" for i in range(6)} | {
                "slerp.png": "png",
                "lerp.png": "png",
            }
            _fake_run(run, "faces_embedded", {"mse": 3.0}, files, extra={"model": {"sampler": {"eta": eta}}})
        elif run.entry.item == "uda":
            mode = dict(run.variant).get("model.mode")
            state = "failed" if mode == "target_only" and seed == 1 else "complete"
            _fake_run(
                run,
                ("mnistm", "uci_digits"),
                {"target_acc": 0.5 + 0.1 * seed},
                {"tsne_class.png": "png", "tsne_domain.png": "png"},
                state,
                extra={"model": {"mode": mode}}
                if mode
                else {"model": {"_target_": "genda.tasks.uda.ADDATask"}},
            )
    failed = m.expand("cpu", root, only="clf")[0].run_dir
    failed.mkdir(parents=True)
    (failed / "runner.json").write_text(
        json.dumps({"state": "failed", "error": "genda: error: bad key"})
    )
    (root / "cpu" / "vae" / "seed1" / "artifacts" / "samples32.png").unlink()


def _image_links(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


@pytest.fixture(scope="module")
def fake_report(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    m = _manifest(tmp)
    _fake_runs(m, tmp / "runs")
    build_report(m, "cpu", tmp / "runs", tmp / "out")
    return tmp / "out"


def test_report_has_every_section_and_no_broken_links(fake_report: Path) -> None:
    md = (fake_report / "REPORT.md").read_text()
    page = (fake_report / "report.html").read_text()
    for title in SECTIONS.values():
        assert f"## {title}" in md and f"<h2>{title}</h2>" in page
    links = _image_links(md)
    # images: GAN 2 grids, VAE 4, DDPM 2, DDIM 3, UDA 4 t-SNE × 2; curves: GAN 2, DDPM, DDIM, UDA pair
    assert len(links) == 2 + 4 + 2 + 3 + 4 * 2 + 2 + 1 + 1 + 1
    assert all((fake_report / p).is_file() for p in links)
    assert page.count('<img src="data:image/png;base64,') == len(links)
    assert 'src="img/' not in page and "file://" not in page  # self-contained


def test_report_numbers_state_data_seeds_and_failures(fake_report: Path) -> None:
    md = (fake_report / "REPORT.md").read_text()
    gan_a = next(x for x in md.splitlines() if x.startswith("| A |"))
    assert (
        f"{statistics.mean([100.0, 101.0]):.2f} ± {statistics.stdev([100.0, 101.0]):.2f} (2 seeds)"
        in gan_a
    )
    assert "64 / 16" in gan_a and "faces_embedded (embedded stand-in)" in gan_a and "| seeds 0, 1 |" in gan_a
    assert "| 10.50 ± 0.71 (2 seeds) | 0.80 ± 0.00 (2 seeds) | 50.0 ± 0.0 (2 seeds) | 90.0 ± 0.0 (2 seeds) | hog |" in gan_a  # KID ×10³, diversity, faces
    # every section opens with its verdict, computed from its own numbers
    verdicts = [x for x in md.splitlines() if x.startswith("**Verdict** — ")]
    assert any("B < A: " in v and "no collapse (diversity ≥ 0.25): " in v for v in verdicts), verdicts
    assert any("M→U: DANN ≥ source only + 5: " in v for v in verdicts), verdicts
    assert any("val reconstruction" in v for v in verdicts) and any("evaluator accuracy" in v for v in verdicts)
    uda = next(x for x in md.splitlines() if x.startswith("| M→U |"))
    assert "mnistm (embedded stand-in) → uci_digits (embedded stand-in)" in uda
    assert (
        "55.0 ± 7.1 (2 seeds)" in uda and "50.0 (1 seed) (1 failed)" in uda and "50.0 (1 seed) |" in uda
    )  # ADDA: 1 seed
    assert (
        "76.66" in md and "22.97" in md and "0.3" in md and "92.4" in md
    )  # published / course numbers beside the tables
    assert "genda: error: bad key" in md and "| failed |" in md
    assert (
        "**missing:** samples of `vae/seed0`" not in md
        and "missing:** samples of `vae/seed1`" not in md
    )
    assert "1625.0" in md and "Per-digit accuracy" in md


def test_missing_artifacts_are_shown_not_fatal(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    build_report(m, "smoke", tmp_path / "nothing", tmp_path / "out")  # no run dirs at all
    md = (tmp_path / "out" / "REPORT.md").read_text()
    assert md.count("**missing:**") >= 6 and "not run" in md
    assert not _image_links(md)


def test_eta_grid_stacks_the_per_eta_rows_in_order(fake_report: Path) -> None:
    grid = next(fake_report.glob("img/ddim__eta_grid.png"))
    assert Image.open(grid).size[1] > 3 * 20  # three eta rows of 20-px-high images (plus labels)
    assert DDIMFaceTask.ARTEFACTS["ddim_images"] == Every("ddim/*.png")
    md = (fake_report / "REPORT.md").read_text()
    assert "assembled from the 3 per-η runs" in md


def test_mean_std_matches_statistics() -> None:
    assert (
        mean_std([0.5, 0.7, 0.9], 100.0, 1) == f"70.0 ± {statistics.stdev([50, 70, 90]):.1f} (3 seeds)"
    )
    assert mean_std([], 1.0) == "—" and mean_std([None, 2.0]) == "2.00 (1 seed)"


def test_seed_list_reads_as_words() -> None:
    # a bare "0" under a "seeds" header read as "zero seeds" in the GAN table
    assert seed_list([0]) == "seed 0" and seed_list([2, 0, 1, 0]) == "seeds 0, 1, 2"
    assert seed_list([]) == "—"


def test_doc_escapes_html_and_renders_inline_marks(tmp_path: Path) -> None:
    d = D.Document("t")
    d.add(D.Para("a <b> `x<y` **bold**"), D.Table(["h|1"], [["v"]]))
    page = D.to_html(d)
    assert "a &lt;b&gt; <code>x&lt;y</code> <b>bold</b>" in page
    assert "h\\|1" in D.to_markdown(d, tmp_path)


CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian package chromium not installed "
    "(apt-get install -y chromium) — cannot render report.html headless",
)
PAGE_WIDTH = 1280  # px: the browser window the report is laid out in

# Injected before </body>: on load, opens every <details> and measures the page's own layout,
# then writes the numbers as JSON into <pre id="layout-report"> (read back from --dump-dom).
#  legend:   rendered width of each <img data-legend> (figures with a legend: t-SNE, curves)
#  overflow: block elements whose content is wider than their box (scrollWidth > clientWidth)
#  outside:  elements whose box sticks out of the body's content box (the page column)
#  broken:   words drawn on more than one line: every word of a <th>, and words of up to 20
#            characters in other text (long tokens may wrap at their <wbr> points); a line
#            break after a hyphen ("stand-/in") does not break a word
LAYOUT_PROBE = r"""<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const doc = document.documentElement, body = document.body, bs = getComputedStyle(body);
  const box = body.getBoundingClientRect();
  const left = box.left + parseFloat(bs.paddingLeft), right = box.right - parseFloat(bs.paddingRight);
  const what = el => el.tagName.toLowerCase() + ' "' + el.textContent.trim().slice(0, 70) + '"';
  const imgs = [...document.images];
  const out = {viewport: doc.clientWidth, scrollWidth: doc.scrollWidth, height: doc.scrollHeight,
    images: imgs.length, loaded: imgs.filter(x => x.complete && x.naturalWidth > 0).length,
    legend: [], overflow: [], outside: [], broken: []};
  for (const im of imgs.filter(x => 'legend' in x.dataset))
    out.legend.push({alt: im.alt, width: im.getBoundingClientRect().width, natural: im.naturalWidth});
  const blocks = 'h1,h2,h3,p,td,th,caption,figcaption,figure,pre,summary,details,table,div';
  for (const el of document.querySelectorAll(blocks)) {
    if (el.scrollWidth > el.clientWidth + 1)
      out.overflow.push(what(el) + ': ' + el.scrollWidth + ' > ' + el.clientWidth + ' px');
    const r = el.getBoundingClientRect();
    if (r.width && (r.left < left - 1 || r.right > right + 1))
      out.outside.push(what(el) + ': ' + Math.round(r.left) + '..' + Math.round(r.right)
                       + ' px, page ' + Math.round(left) + '..' + Math.round(right));
  }
  for (const el of document.querySelectorAll('th,td,p,caption,figcaption,h1,h2,h3,summary')) {
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n; (n = walk.nextNode());) {
      for (const m of n.data.matchAll(/[^\s-]+-?/g)) {
        if (el.tagName !== 'TH' && m[0].length > 20) continue;
        const range = document.createRange();
        range.setStart(n, m.index); range.setEnd(n, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].map(x => Math.round(x.bottom)));
        if (lines.size > 1) out.broken.push(what(el) + ': "' + m[0] + '" on ' + lines.size + ' lines');
      }
    }
  }
  const pre = document.createElement('pre');
  pre.id = 'layout-report';
  pre.textContent = JSON.stringify(out);
  body.appendChild(pre);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    done = subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120)
    return done.stdout


def _layout(page_html: str, tmp_path: Path) -> tuple[dict, Path]:
    """The layout numbers LAYOUT_PROBE measures in headless Chromium, PAGE_WIDTH px wide,
    and the probed copy of the page."""
    page = tmp_path / "page.html"
    page.write_text(page_html.replace("</body>", LAYOUT_PROBE + "</body>"))
    dom = _chromium(tmp_path, f"--window-size={PAGE_WIDTH},1000", "--dump-dom",
                    "--virtual-time-budget=5000", page.as_uri())
    found = re.search(r'<pre id="layout-report">(.*?)</pre>', dom, re.S)
    assert found, "page did not finish loading (no layout report in the dumped DOM)"
    return json.loads(html.unescape(found.group(1))), page


def _assert_reads_well(lay: dict) -> None:
    assert PAGE_WIDTH - 20 <= lay["viewport"] <= PAGE_WIDTH, lay["viewport"]  # less a scrollbar
    assert lay["loaded"] == lay["images"], f"{lay['loaded']} of {lay['images']} images decoded"
    narrow = [x for x in lay["legend"] if x["width"] < 600]
    assert lay["legend"] and not narrow, f"figures with a legend shown under 600 px: {narrow}"
    assert lay["scrollWidth"] <= lay["viewport"], "the page scrolls sideways"
    assert not lay["overflow"], "text overflows its box:\n" + "\n".join(lay["overflow"])
    assert not lay["outside"], "boxes stick out of the page:\n" + "\n".join(lay["outside"])
    assert not lay["broken"], "words broken across lines:\n" + "\n".join(lay["broken"])


@needs_chromium
def test_report_html_renders_in_chromium(fake_report: Path, tmp_path: Path) -> None:
    """Chromium at 1280 px: every <img> decodes, figures with a legend are >= 600 px wide, no
    text overflows its cell or the page, no word (headers: "seeds") breaks mid-word; the
    full-page screenshot (kept as chromium_screenshot.png beside the report) is not blank."""
    lay, page = _layout((fake_report / "report.html").read_text(), tmp_path)
    assert lay["images"] > 10 and len(lay["legend"]) >= 8 + 2 + 5  # t-SNE, VAE's, curves
    _assert_reads_well(lay)
    shot = tmp_path / "shot.png"
    height = min(lay["height"], 16000)
    _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={PAGE_WIDTH},{height}", page.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (height, PAGE_WIDTH) and pixels.std() > 10  # not a blank page
    shutil.copyfile(shot, fake_report / "chromium_screenshot.png")


@needs_chromium
def test_long_tokens_wrap_and_short_figures_with_legends_are_widened(tmp_path: Path) -> None:
    """doc.py's CSS on bad cases: tokens far wider than a cell, a caption or the page, an
    11-column table, a code line longer than the page, a 430-px curves figure."""
    path = "runs/" + "/".join(["a_very_long_folder_name_without_spaces"] * 8)
    _png(tmp_path / "img" / "x__curves.png", 430, 330)
    _png(tmp_path / "img" / "x__grid.png", 40, 20)
    d = D.Document("t " + "x" * 300)
    d.add(
        D.Para(f"see `{path}` and {'y' * 400}"),
        D.Table(["run", "seeds", "data", *[f"metric {i} ↓" for i in range(8)]],
                [[f"[{path}]({path})", "0, 1, 2", "faces_embedded (embedded stand-in)",
                  *[f"{i}.00 ± 0.00 (3 seeds)" for i in range(8)]]], "caption " + "z" * 300),
        D.Image(tmp_path / "img" / "x__curves.png", f"curves of {path}"),
        D.Gallery([D.Image(tmp_path / "img" / "x__grid.png", "grid", 640), D.Missing(path)]),
        D.Code("#" * 500 + "\n" + path, "long"),
    )
    lay, _ = _layout(D.to_html(d), tmp_path)
    _assert_reads_well(lay)
    assert [round(x["width"]) for x in lay["legend"]] == [600]  # the curves, not the grid


def test_training_time_line_sums_runs_and_spans_first_start_to_last_finish() -> None:
    from genda.report.build import training_time_line

    runners = [
        {"seconds": 600.0, "finished": "2026-11-24 03:10:00"},  # started 03:00
        {"seconds": 1200.0, "finished": "2026-11-24 03:30:00"},  # started 03:10
        {"state": "failed", "error": "no timing"},  # ignored
    ]
    line = training_time_line(runners)
    assert "30.0 run-minutes over 2 runs" in line and "30.0 min from the first start" in line
    assert "not recorded" in training_time_line([{}])


# -- hyperparameters, curves, sources, links, DSN ---------------------------------------
def test_each_section_has_a_hyperparameter_table_from_the_saved_configs(fake_report: Path) -> None:
    md = (fake_report / "REPORT.md").read_text()
    assert md.count("hyperparameters from each run's saved config.yaml") == 5  # one per item
    assert "**missing:** hyperparameters: no saved config.yaml" in md  # the classifier never ran
    lines = md.splitlines()
    row = lambda name: next(x for x in lines if x.startswith(f"| {name} |"))  # noqa: E731
    assert "| Adam, lr 0.0002, β (0.5, 0.999) |" in row("G optimiser")  # columns A, B
    assert "Generator(ngf=64, nz=100)" in row("generator") and "ndf=64" in row("discriminator")
    assert "| 0.999 |" in row("EMA decay") and "| 3 |" in row("training steps")
    assert "| 0, 1 |" in row("seed")  # two seeds of one column
    assert "| 0, 0.5, 1 |" in row("η (DDIM)")  # the per-η runs of one column


def test_a_run_started_from_a_source_only_run_says_so_not_where() -> None:
    from genda.report.hparams import hyperparameters, merged

    def cfg(seed, ckpt):
        return {"model": {"_target_": "genda.tasks.uda.ADDATask", "pretrain_fraction": 0.5, "target_lr": 3e-6,
                          "source_ckpt": ckpt}, "trainer": {"max_steps": 300}, "seed": seed}

    rows = merged([cfg(0, "/r/so/seed0"), cfg(1, "/r/so/seed1")])
    assert rows["starts from"] == "the pair's source-only run of the same seed (model.source_ckpt)"
    assert "source pre-training (fraction of steps)" not in rows and "/r/so" not in str(rows)
    own = dict(hyperparameters(cfg(0, None)))
    assert own["source pre-training (fraction of steps)"] == "0.5" and "starts from" not in own


def test_training_curves_are_drawn_from_metrics_and_reused_where_the_run_drew_them(
    fake_report: Path,
) -> None:
    md = (fake_report / "REPORT.md").read_text()
    for name in ("gan_a__seed0", "gan_b__seed0", "ddpm__seed0", "ddim__eta_0.0__seed0", "uda__uda"):
        assert (fake_report / "img" / f"{name}__curves.png").is_file(), name
    assert "Training curves of `gan_a/seed0`" in md and "M→U: training curves" in md
    from genda.report.sections.gan import _sigmoid

    assert _sigmoid(0.0) == 0.5 and 0.0 <= _sigmoid(-1e4) < _sigmoid(1e4) <= 1.0


def test_baselines_come_from_the_data_file_with_their_sources(fake_report: Path) -> None:
    from genda.report.core import load_baselines

    base = load_baselines()
    cited = [v["source"] for c in base["course"].values() for v in (c["baseline"], c["best_student"])]
    cited += [x[k]["source"] for x in base["course_uda"] for k in ("baseline", "best_student")]
    cited += [x["source"] for x in base["student_uda"] + base["published_dann"]]
    assert set(cited) <= set(base["sources"])
    md = (fake_report / "REPORT.md").read_text()
    assert "30 / 27 [course_hw2]" in md and "76.66" in md and "[ganin2015_t1]" in md
    assert "Ganin & Lempitsky 2015" in md and "student report 000" in md
    build_src = (Path(__file__).parents[1] / "src/genda/report/build.py").read_text()
    assert "76.66" not in build_src and "22.97" not in build_src  # numbers live in the data file


def test_run_dirs_are_relative_links_and_seeds_are_spelled_out(fake_report: Path) -> None:
    md = (fake_report / "REPORT.md").read_text()
    page = (fake_report / "report.html").read_text()
    assert "[gan_a/seed0](../runs/cpu/gan_a/seed0)" in md
    assert '<a href="../runs/cpu/gan_a/seed0"><code>gan_a/seed0</code></a>' in page
    assert str(fake_report.parent) not in md  # no absolute run dirs
    assert "(n=1)" not in md and "(1 seed)" in md and "64 / 16 images" in md


def test_sections_follow_the_manifest_and_dsn_gets_a_column(tmp_path: Path) -> None:
    spec = {
        "group": "t",
        "runs": {
            "uda": {"experiment": "dann_mnistm_usps", "item": "uda", "pair": "M→U",
                    "sweep": {"model.mode": ["source_only", "dann", "target_only"]}},
            "dsn": {"experiment": "dsn_mnistm_usps", "item": "uda", "pair": "M→U"},
        },
    }
    m = _manifest(tmp_path, spec)
    for run in m.expand("smoke", tmp_path / "runs"):
        mode = dict(run.variant).get("model.mode")
        model = {"mode": mode} if mode else {"_target_": "genda.tasks.dsn.DSNTask", "mode": "dann"}
        _fake_run(run, ("mnistm", "uci_digits"), {"target_acc": 0.8 if mode is None else 0.5},
                  {"tsne_class.png": "png"}, extra={"model": model})
    build_report(m, "smoke", tmp_path / "runs", tmp_path / "out")
    md = (tmp_path / "out" / "REPORT.md").read_text()
    head = next(x for x in md.splitlines() if x.startswith("| pair | data |"))
    assert head.endswith("| DANN | trained on target | ADDA | DSN | seeds |")
    row = next(x for x in md.splitlines() if x.startswith("| M→U |"))
    assert row.endswith("| not in manifest | 80.0 (1 seed) | seed 0 |")
    assert f"## {SECTIONS['uda']}" in md and "## " + SECTIONS["gan"] not in md
    assert "## " + SECTIONS["classifier"] not in md


def test_eta_grid_row_labels_fit_inside_the_figure(tmp_path: Path) -> None:
    from genda.report.figures import labelled_rows

    row = np.zeros((16, 64, 3), np.uint8)
    path = labelled_rows([("η = 0.25", row), ("η = 1.0", row)], tmp_path / "g.png", "t")
    grey = np.asarray(Image.open(path).convert("L"))
    assert (grey[:, :3] > 250).all()  # the left edge is margin, so no label is cut there
    assert (grey[:, : grey.shape[1] // 4] < 128).any()  # ... and the labels are drawn left of the images


def test_dann_from_a_source_only_run_is_its_own_column_and_verdict(tmp_path: Path) -> None:
    import json

    from genda.report.records import RunRecord
    from genda.report.sections.uda import NAMES, method
    from genda.report.verdicts import uda

    so = {"experiment": "dann_mnistm_usps", "item": "uda", "pair": "M→U", "sweep": {"model.mode": ["source_only"]}}
    ft = {"experiment": "dann_mnistm_usps", "item": "uda", "pair": "M→U",
          "uses": {"model.source_ckpt": "uda/mode_source_only"}}
    runs = _manifest(tmp_path, {"seeds": 1, "runs": {"uda": so, "ft": ft}}).expand("cpu", tmp_path / "r")
    recs = []
    for run, acc, model in zip(runs, (0.30, 0.36), ({"mode": "source_only"},
                                                     {"mode": "dann", "source_ckpt": str(runs[0].run_dir)}),
                               strict=True):
        run.run_dir.mkdir(parents=True)
        (run.run_dir / "config.yaml").write_text(yaml.safe_dump({"model": model, "seed": 0}))
        (run.run_dir / "status.json").write_text('{"state": "complete"}')
        (run.run_dir / "summary.json").write_text(json.dumps({"target_acc": acc}))
        recs.append(RunRecord.read(run))
    assert [method(r) for r in recs] == ["source_only", "dann_ft"]
    text = str(uda("M→U", {"source_only": recs[:1], "dann_ft": recs[1:]}, [], NAMES).text)
    assert "DANN from source only ≥ source only + 5: **yes** (36.0 vs 30.0)" in text


def test_vae_tsne_without_attributes_is_redrawn_by_brightness(tmp_path: Path) -> None:
    """A VAE run on data without attributes (the embedded faces) saved each image's brightness;
    the report's redraw of its t-SNE colours by it and says so."""
    spec = {"group": "t", "runs": {"vae": {"experiment": "vae_faces", "item": "vae", "seeds": 1}}}
    m = _manifest(tmp_path, spec)
    rng = np.random.default_rng(0)
    for run in m.expand("smoke", tmp_path / "runs"):
        _fake_run(run, "faces_synthetic", {"fid": 200.0, "recon": 0.1},
                  {"reconstruction_mse.json": {"mse": [0.1] * 10, "mse_255": [1625.0] * 10},
                   "latents.npz": {"mu": rng.normal(size=(30, 8)), "brightness": rng.normal(size=30)}})
    build_report(m, "smoke", tmp_path / "runs", tmp_path / "out")
    md = (tmp_path / "out" / "REPORT.md").read_text()
    assert "t-SNE of the 30 val latent means coloured by image brightness" in md


def test_diffusion_loss_panel_names_the_runs_objective() -> None:
    """The DDPM/DDIM loss panel's title says what the run regressed (ε or v) and its weights, read
    from the run's saved config; runs saved before `prediction` existed read as ε."""
    from genda.report.sections.ddpm import loss_name

    assert loss_name({}) == "ε-prediction MSE"
    assert loss_name({"prediction": "eps", "min_snr_gamma": None}) == "ε-prediction MSE"
    assert loss_name({"prediction": "v", "min_snr_gamma": 5}) == "v-prediction MSE, Min-SNR-5 weights"
    assert loss_name({"min_snr_gamma": 5.0}) == "ε-prediction MSE, Min-SNR-5 weights"


def test_noise_schedule_row_names_what_sets_the_betas() -> None:
    """A linear schedule's row gives its β range; a cosine one its offset s (its betas come from
    ᾱ_t = cos², so beta_start/beta_end, still in the config, must not be shown as if used)."""
    from genda.report.hparams import hyperparameters

    def row(schedule: dict) -> str:
        rows = dict(hyperparameters({"model": {"schedule": schedule}}))
        return rows["noise schedule"]

    base = {"num_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02}
    assert row({"kind": "linear", **base}) == "linear, T=1000, β 0.0001 → 0.02"
    assert row({"kind": "cosine", **base}) == "cosine, T=1000, s = 0.008"
