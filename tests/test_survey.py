"""The reading list (kpedu.survey, book/ch05-wider-field): every paper the study's reading list
names is in the table, in the bibliography and in the chapter; the bibliography block is the
one the table generates; the figures and counts come from the table."""
import json
import re
from pathlib import Path

import pytest

from kpedu import survey

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"
CHAPTER = ROOT / "book" / "ch05-wider-field"
NOTEBOOK = CHAPTER / "01-reading-list.ipynb"
HEADING = re.compile(r"^#{3,4} \\\[\*\*(?P<venue>[^*]+)\*\*\\\] \[(?P<title>[^\]]+)\]\((?P<url>[^)]+)\)", re.M)
#: Papers of the list that already have a chapter of their own.
CHAPTERED = {"D2-Net: A Trainable CNN for Joint Description and Detection of Local Features"}


def listed_papers() -> dict[str, tuple[str, str]]:
    """title -> (venue with year, url) for every paper heading of the reading-list file."""
    path = SEEDS / "000_448fce1db03c80e2.txt"
    if not path.is_file():
        pytest.skip(f"the reading list {path} is not beside the repository")
    return {m["title"]: (m["venue"], m["url"]) for m in HEADING.finditer(path.read_text(encoding="utf-8"))}


def notebook_markdown() -> str:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_every_listed_paper_is_in_the_table_with_its_exact_title_venue_and_year():
    listed = {t: v for t, v in listed_papers().items() if t not in CHAPTERED}
    table = {r["title"]: r for r in survey.papers()}
    assert set(listed) == set(table), (sorted(set(listed) - set(table)), sorted(set(table) - set(listed)))
    assert len(table) == 25
    for title, (venue, url) in listed.items():
        name, year = venue.rsplit(" ", 1)
        row = table[title]
        assert row["year"] == int(year) and row["venue"].lower() == name.lower(), title
        assert row["url"] == url, title


def test_the_bibliography_block_is_the_one_the_table_generates():
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    assert survey.bib_block() in text, "run `python -m kpedu.survey bib` after editing the reading list"
    for r in survey.papers():
        entry = re.search(r"@\w+\{" + r["key"] + r",(.*?)\n\}", text, re.S)
        assert entry, r["key"]
        assert re.sub(r"[{}]", "", r["title"]) in re.sub(r"[{}]", "", entry.group(1)), r["key"]
        assert text.count("{" + r["key"] + ",") == 1, f"{r['key']} is defined twice"


def test_every_paper_has_an_entry_in_the_chapter():
    text = notebook_markdown()
    headings = set(re.findall(r"^### (.+)$", text, re.M))
    for r in survey.papers():
        assert r["title"] in headings, f"no section for {r['title']!r}"
        assert "{cite}`" + r["key"] + "`" in text, f"{r['key']} is not cited"
        assert r["short"]


def test_the_chapter_follows_the_table_groups():
    text = notebook_markdown()
    positions = {g: text.index("## " + heading + "\n") for g, heading in survey.GROUPS.items()}
    assert list(positions) == sorted(positions, key=positions.get), "group sections out of the table's order"
    bounds = sorted(positions.values()) + [len(text)]
    for r in survey.papers():
        start = positions[r["group"]]
        end = min(b for b in bounds if b > start)
        assert start < text.index("### " + r["title"] + "\n") < end, f"{r['key']} is outside its group's section"


def test_the_3d_headings_are_covered():
    path = SEEDS / "004_48cd39ef0a124034.txt"
    if not path.is_file():
        pytest.skip("the second study file is not beside the repository")
    heads = re.findall(r"^##+ (3D Keypoint Detection.*|Supervised 3D.*|Unsupervised 3D.*)$",
                       path.read_text(encoding="utf-8"), re.M)
    assert len(heads) == 4, heads
    page = (CHAPTER / "02-3d-keypoints.md").read_text(encoding="utf-8")
    for section in ("## From images", "## From point clouds", "**Supervised.**", "**Without 3D labels.**",
                    "**Without labels.**"):
        assert section in page, section


def test_counts_add_up_and_follow_the_table():
    rows = survey.papers()
    assert sum(survey.counts("group").values()) == len(rows) == sum(survey.counts("year").values())
    assert sum(survey.counts("code").values()) == len(rows)
    assert survey.counts("supervision")["none-video"] == sum(r["supervision"] == "none-video" for r in rows)
    assert list(survey.counts("group")) == [g for g in survey.GROUPS if any(r["group"] == g for r in rows)]
    assert survey.papers("3d") and all(r["group"] == "3d" for r in survey.papers("3d"))
    with pytest.raises(ValueError, match="by"):
        survey.counts("colour")
    with pytest.raises(ValueError, match="group"):
        survey.papers("robots")


def test_the_validator_refuses_a_broken_row():
    row = survey.papers()[0]
    with pytest.raises(ValueError, match="fields"):
        survey._validate([{k: v for k, v in row.items() if k != "year"}])
    with pytest.raises(ValueError, match="repeated"):
        survey._validate([row, dict(row)])
    with pytest.raises(ValueError, match="group"):
        survey._validate([{**row, "group": "misc"}])
    with pytest.raises(ValueError, match="builds_on"):
        survey._validate([{**row, "builds_on": ["yolo"]}])


def test_bibtex_entries(tmp_path):
    rows = {r["key"]: r for r in survey.papers()}
    conf = survey.bibtex(rows["Kulkarni2019"])
    assert conf.startswith("@inproceedings{Kulkarni2019,") and "Kulkarni, Tejas" in conf and "NeurIPS" in conf
    arxiv = survey.bibtex(rows["Ryou2021"])
    assert arxiv.startswith("@misc{Ryou2021,") and "arXiv:2109.13423" in arxiv
    unknown = survey.bibtex(rows["Structured3DV2019"])
    assert "{Authors not checked}" in unknown and unknown.startswith("@misc") and "{3D}" in unknown
    assert "Yi-Ge and others" in survey.bibtex(rows["YiGe2021"])
    # write_bib replaces its own block and keeps everything else
    bib = tmp_path / "refs.bib"
    bib.write_text("@misc{Other,\n  title = {x}\n}\n", encoding="utf-8")
    survey.write_bib(bib)
    survey.write_bib(bib)
    text = bib.read_text(encoding="utf-8")
    assert text.count(survey.BIB_BEGIN) == 1 and text.startswith("@misc{Other,") and survey.bib_block() in text


def test_figures_draw_every_paper():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = survey.taxonomy_figure()
    labels = [t.get_text() for t in fig.axes[0].texts]
    for r in survey.papers():
        assert any(t.replace("\n", " ").startswith(r["short"].replace("\n", " ")) for t in labels), r["short"]
    plt.close(fig)
    fig = survey.timeline_figure()
    boxes = [t.get_text() for t in fig.axes[0].texts if t.get_bbox_patch() is not None]
    assert sorted(boxes) == sorted(f"{r['short']}  ({r['venue']})" for r in survey.papers())
    plt.close(fig)
