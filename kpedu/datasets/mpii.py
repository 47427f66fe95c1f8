"""MPII Human Pose, the data set of the Stacked Hourglass paper (Newell et al., ECCV 2016).

On disk, as distributed::

    ROOT/mpii_human_pose_v1_u12_1.mat      (also ROOT/mpii_human_pose_v1_u12_2/... or ROOT/annotations/...)
    ROOT/images/*.jpg

The ``.mat`` file holds the MATLAB struct ``RELEASE``: ``annolist`` (one entry per image:
``image.name`` and ``annorect``, the people), ``img_train`` (1 for training images, 0
for test images, whose keypoints are withheld), ``single_person`` (per image, the
1-based indices of the people standing apart from the others) and ``act`` (activity).
Each ``annorect`` of a training image has the head box ``x1, y1, x2, y2``, the rough
centre ``objpos.x, objpos.y``, the ``scale`` (person height / 200 px) and
``annopoints.point``: entries ``id`` (joint 0..15), ``x``, ``y`` and ``is_visible``.
:func:`read_mpii` reads it with ``scipy.io.loadmat(squeeze_me=True,
struct_as_record=False)`` and copes with the file's irregularities (a single struct
where an array is expected, empty fields, ``is_visible`` given as a number, a text or
not at all).

Conventions. MATLAB counts pixels from 1: every coordinate (joints, head boxes,
``objpos``) is shifted by -1 into the book's convention (pixel row ``i``, column ``j``
has its centre at ``(x, y) = (j, i)``). Joint ids give the order of :data:`MPII16`
(0 r ankle, 1 r knee, 2 r hip, 3 l hip, 4 l knee, 5 l ankle, 6 pelvis, 7 thorax,
8 upper neck, 9 head top, 10 r wrist, 11 r elbow, 12 r shoulder, 13 l shoulder,
14 l elbow, 15 l wrist). Flags: ``is_visible = 1`` (or the text ``'1'``, or no flag)
becomes ``v = 2``, ``is_visible = 0`` becomes ``v = 1`` (annotated but occluded, as in
COCO), a joint absent from ``annopoints.point`` is ``v = 0``. Every annotated joint is
scored by PCKh, whatever its flag, as in the MPII evaluation code.

PCKh. The MPII evaluation normalises by the head size ``0.6 * ||(x2, y2) - (x1, y1)||``,
the diagonal of the head box times ``SC_BIAS = 0.6``; :attr:`MPIIPerson.head_size` is
that value and :class:`MPIIPeople` returns it in crop pixels (``head_size``, and the
``head_sizes`` of :meth:`MPIIPeople.materialise`), ready for
``kpedu.metrics.pck(pred, gt, visible, head_sizes, 0.5)``.

Crops. As in the Stacked Hourglass training code: the crop is centred on ``objpos``
moved down by ``15 * scale`` pixels (so that the feet stay in), and its side is
``200 * scale * 1.25`` source pixels, resampled to ``image_size`` (256 in the paper,
128 in the book's recipe).

Splits. The paper validates on about 3,000 people of the training images held out by
Tompson et al.; that list is not part of the ``.mat`` file. ``val_split`` takes it (or
any list) as a file: one image name per line, or a JSON list of names or of objects
with an ``"image"`` key (the ``valid.json`` distributed with later MPII code is such a
list); every person of a listed image is a validation person and the training split
drops those images. Without a file the split is deterministic and documented: a
training image is a validation image when ``zlib.crc32`` of its name is divisible by 10
(about 1,700 images, about 2,900 people, independent of the file order); this is *not*
Tompson's split, so numbers on it are not comparable with the paper's.
"""
from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import checks
from ..data import load_skeleton
from ._common import DatasetLayoutError, as_root, check_images_exist, first_existing, read_name_list
from ._crops import PersonCrops, PersonRecord

__all__ = [
    "MPII16",
    "MPII_SC_BIAS",
    "MPII_ANNOTATION",
    "MPIIPerson",
    "MPIIAnnotations",
    "read_mpii",
    "find_mpii",
    "mpii_head_size",
    "is_default_validation",
    "MPIIPeople",
]

#: The 16-joint MPII skeleton (``kpedu/data/skeletons/mpii16.json``), in annotation-id order.
MPII16 = load_skeleton("mpii16")
#: The MPII evaluation's head-size factor: head size = ``0.6 *`` the head box's diagonal.
MPII_SC_BIAS = 0.6
#: The annotation file's name as distributed.
MPII_ANNOTATION = "mpii_human_pose_v1_u12_1.mat"

_LAYOUT = (f"the MPII Human Pose layout ROOT/{MPII_ANNOTATION} (or ROOT/mpii_human_pose_v1_u12_2/{MPII_ANNOTATION}) "
           "and ROOT/images/*.jpg")


def mpii_head_size(head_box) -> np.ndarray:
    """PCKh's normaliser from head boxes ``(..., 4)`` ``(x1, y1, x2, y2)``:
    ``0.6 * ||(x2, y2) - (x1, y1)||`` (the MPII evaluation code's ``SC_BIAS``)."""
    b = checks.as_array(head_box, "head_box")
    if b.shape[-1:] != (4,):
        raise ValueError(f"head_box must have shape (..., 4) (x1, y1, x2, y2), got shape {b.shape}")
    return MPII_SC_BIAS * np.hypot(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])


@dataclass
class MPIIPerson:
    """One annotated rectangle of the ``.mat`` file, in the book's 0-based pixel convention.

    ``keypoints`` ``(16, 2)`` float64 (0 where not annotated), ``visible`` ``(16,)`` uint8
    (2, 1 or 0 as described in :mod:`kpedu.datasets.mpii`), ``head_box`` ``(4,)`` or
    ``None``, ``center`` (``objpos``) ``(2,)`` or ``None``, ``scale`` or ``None``;
    ``image_index`` and ``rect`` are the 0-based positions in ``annolist`` and in the
    image's ``annorect``; ``single`` marks the ``single_person`` entries."""

    image: str
    image_index: int
    rect: int
    train: bool
    single: bool
    keypoints: np.ndarray
    visible: np.ndarray
    head_box: np.ndarray | None
    center: np.ndarray | None
    scale: float | None

    @property
    def annotated(self) -> bool:
        """Whether at least one joint is annotated."""
        return bool((self.visible > 0).any())

    @property
    def head_size(self) -> float:
        """The PCKh normaliser in source pixels (NaN without a head box)."""
        return float(mpii_head_size(self.head_box)) if self.head_box is not None else float("nan")


@dataclass
class MPIIAnnotations:
    """The content of the MPII ``.mat`` file: ``images`` (names, ``annolist`` order),
    ``img_train`` ``(N,)`` bool, ``people`` (every rectangle with a ``scale`` and an
    ``objpos`` or with keypoints) and ``activities`` (``act_name`` per image, ``''`` when
    empty)."""

    images: list[str]
    img_train: np.ndarray
    people: list[MPIIPerson]
    activities: list[str]


def _items(x: Any) -> list:
    """A MATLAB array read with ``squeeze_me`` as a list: a single struct becomes
    ``[struct]``, an empty array ``[]``."""
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        return list(x.reshape(-1)) if x.dtype == object else ([] if x.size == 0 else list(x.reshape(-1)))
    return [x]


def _number(x: Any) -> float | None:
    """A MATLAB scalar as a float; ``None`` for an empty field or text that is no number."""
    if isinstance(x, np.ndarray):
        if x.size != 1:
            return None
        x = x.reshape(-1)[0]
    if isinstance(x, (str, bytes)):
        try:
            return float(x.strip())
        except ValueError:
            return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _field(s: Any, name: str) -> Any:
    return getattr(s, name, None) if hasattr(s, "_fieldnames") and name in s._fieldnames else None


def _people_of(entry: Any, i: int, name: str, train: bool, single: set[int]) -> list[MPIIPerson]:
    out = []
    for r, rect in enumerate(_items(_field(entry, "annorect"))):
        if not hasattr(rect, "_fieldnames"):
            continue
        kps = np.zeros((16, 2))
        vis = np.zeros(16, np.uint8)
        ap = _field(rect, "annopoints")
        points = _items(_field(ap, "point")) if hasattr(ap, "_fieldnames") else []
        for p in points:
            jid, x, y = _number(_field(p, "id")), _number(_field(p, "x")), _number(_field(p, "y"))
            if jid is None or x is None or y is None:
                continue
            if jid != int(jid) or not 0 <= jid < 16:
                raise ValueError(f"{name} (annolist entry {i + 1}, annorect {r + 1}): joint id {jid} is not one of "
                                 "the 16 MPII joints 0..15")
            flag = _number(_field(p, "is_visible"))
            kps[int(jid)] = (x - 1.0, y - 1.0)  # MATLAB's 1-based pixels
            vis[int(jid)] = 1 if flag == 0 else 2
        box = [_number(_field(rect, k)) for k in ("x1", "y1", "x2", "y2")]
        head = np.asarray(box, dtype=np.float64) - 1.0 if all(v is not None for v in box) else None
        obj = _field(rect, "objpos")
        cx, cy = (_number(_field(obj, "x")), _number(_field(obj, "y"))) if hasattr(obj, "_fieldnames") else (None, None)
        center = np.array([cx - 1.0, cy - 1.0]) if cx is not None and cy is not None else None
        scale = _number(_field(rect, "scale"))
        if scale is not None and scale <= 0:
            scale = None
        if center is None and scale is None and not vis.any():
            continue
        out.append(MPIIPerson(name, i, r, train, r in single, kps, vis, head, center, scale))
    return out


def read_mpii(path: str | os.PathLike) -> MPIIAnnotations:
    """Read ``mpii_human_pose_v1_u12_1.mat`` (the ``RELEASE`` struct) into
    :class:`MPIIAnnotations`; coordinates in the book's 0-based convention."""
    from scipy.io import loadmat

    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetLayoutError(f"no MPII annotation file at {p}: expected {_LAYOUT}")
    try:
        mat = loadmat(str(p), squeeze_me=True, struct_as_record=False)
    except Exception as e:  # scipy raises several kinds for a file that is not MATLAB
        raise ValueError(f"{p} is not a readable MATLAB file ({type(e).__name__}: {e})") from None
    release = mat.get("RELEASE")
    if release is None or not hasattr(release, "_fieldnames") or "annolist" not in release._fieldnames:
        raise ValueError(f"{p} has no RELEASE struct with an annolist: expected the MPII Human Pose annotations "
                         f"({MPII_ANNOTATION})")
    annolist = _items(release.annolist)
    n = len(annolist)
    train = np.asarray(_items(_field(release, "img_train")), dtype=np.float64).reshape(-1)
    if train.shape != (n,):
        raise ValueError(f"{p}: RELEASE.img_train has {train.size} entries for {n} images in annolist")
    singles = _items(_field(release, "single_person"))
    acts = _items(_field(release, "act"))
    images, people, activities = [], [], []
    for i, entry in enumerate(annolist):
        img = _field(entry, "image")
        name = _field(img, "name") if hasattr(img, "_fieldnames") else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"{p}: annolist entry {i + 1} has no image.name")
        images.append(name)
        sp = {int(v) - 1 for v in _items(singles[i])} if i < len(singles) else set()
        people.extend(_people_of(entry, i, name, bool(train[i]), sp))
        a = _field(acts[i], "act_name") if i < len(acts) and hasattr(acts[i], "_fieldnames") else None
        activities.append(a if isinstance(a, str) else "")
    return MPIIAnnotations(images, train.astype(bool), people, activities)


def find_mpii(root: str | os.PathLike, annotations: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(annotation file, image folder)`` of an MPII folder (``DatasetLayoutError`` naming
    the expected layout when either is missing)."""
    root = as_root(root)
    if annotations is not None:
        ann = Path(annotations).expanduser()
        if not ann.is_file():
            raise DatasetLayoutError(f"annotations {ann} is not a file: expected {MPII_ANNOTATION}")
    else:
        ann = first_existing([root / MPII_ANNOTATION, root / "mpii_human_pose_v1_u12_2" / MPII_ANNOTATION,
                              root / "annotations" / MPII_ANNOTATION])
        if ann is None:
            found = sorted(x.name for x in root.rglob("*.mat"))[:3]
            extra = f" (found {', '.join(found)})" if found else ""
            raise DatasetLayoutError(f"no {MPII_ANNOTATION} under {root}{extra}: expected {_LAYOUT}")
    images = root / "images"
    if not images.is_dir():
        raise DatasetLayoutError(f"no images folder {images}: expected {_LAYOUT}")
    return ann, images


def is_default_validation(name: str) -> bool:
    """The default validation rule: ``zlib.crc32(name) % 10 == 0`` (about one training
    image in ten; see :mod:`kpedu.datasets.mpii`)."""
    return zlib.crc32(str(name).encode("utf-8")) % 10 == 0


class MPIIPeople(PersonCrops):
    """MPII people as ``image_size`` crops for top-down training and PCKh evaluation.

    Args:
        root: the MPII folder (see :mod:`kpedu.datasets.mpii` for the layout).
        split: ``"train"``, ``"val"``, ``"trainval"`` (training images) or ``"test"``
            (test images: ``objpos`` and ``scale`` only, every ``v = 0``).
        image_size: side of the square crops (256 in the paper).
        val_split: a file listing the validation images (see the module's docstring),
            or ``None`` for the default rule :func:`is_default_validation`.
        people: ``"all"`` or ``"single"`` (only ``RELEASE.single_person``).
        annotations: the ``.mat`` file, when it is not in one of the usual places.
        drop_outside: annotated joints outside the crop get ``v = 0``.

    Items (``dataset[i]``) are the dicts of :class:`~kpedu.datasets._crops.PersonCrops`:
    ``image`` ``(3, S, S)`` float32, ``keypoints`` ``(16, 2)``, ``visible`` ``(16,)``
    uint8, ``head_size`` (PCKh normaliser, crop pixels), ``area``, ``transform``,
    ``index``; :meth:`materialise` gives a :class:`kpedu.foundations.PeopleTensors` with
    ``K = 16`` (:data:`MPII16`, whose ``flip_permutation`` a flip needs).
    ``persons[i]`` is the :class:`MPIIPerson` behind crop ``i`` and :meth:`to_source`
    maps predictions back to the photograph. Only people with an ``objpos`` and a
    ``scale`` (and, except for ``"test"``, at least one annotated joint) are used.
    """

    skeleton = MPII16

    def __init__(self, root: str | os.PathLike, split: str = "train", image_size: int = 256,
                 val_split: str | os.PathLike | None = None, people: str = "all",
                 annotations: str | os.PathLike | None = None, drop_outside: bool = True):
        split = checks.choice(split, "split", ("train", "val", "trainval", "test"))
        people = checks.choice(people, "people", ("all", "single"))
        image_size = checks.integer(image_size, "image_size", minimum=8)
        ann_path, image_dir = find_mpii(root, annotations)
        self.annotations = read_mpii(ann_path)
        if val_split is not None:
            names = set(read_name_list(val_split, "MPII validation split file"))
            unknown = sorted(names - set(self.annotations.images))
            if unknown and len(unknown) == len(names):
                raise ValueError(f"val_split {val_split}: none of its {len(names)} image names is an MPII image "
                                 f"(e.g. {unknown[0]})")
            is_val = names.__contains__
        else:
            is_val = is_default_validation
        keep: list[MPIIPerson] = []
        for person in self.annotations.people:
            if person.center is None or person.scale is None:
                continue
            if people == "single" and not person.single:
                continue
            if split == "test":
                if person.train:
                    continue
            else:
                if not person.train or not person.annotated:
                    continue
                v = is_val(person.image)
                if (split == "train" and v) or (split == "val" and not v):
                    continue
            keep.append(person)
        self.persons: list[MPIIPerson] = keep
        self.split = split
        records = []
        for p in keep:
            center = p.center + np.array([0.0, 15.0 * p.scale])  # the training code's shift towards the feet
            records.append(PersonRecord(p.image, center, 200.0 * p.scale * 1.25, p.keypoints, p.visible,
                                        p.head_size, float("nan"), (p.image_index, p.rect)))
        super().__init__(records, image_dir, image_size, drop_outside)
        check_images_exist(image_dir, [r.file for r in records], _LAYOUT)

    def head_sizes(self) -> np.ndarray:
        """``(N,)`` PCKh normalisers in crop pixels, without reading any image."""
        return np.array([p.head_size * self.image_size / r.side for p, r in zip(self.persons, self.records)])
