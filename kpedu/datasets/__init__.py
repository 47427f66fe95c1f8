"""Real data sets, read as their publishers distribute them, in the chapters' sample structures.

The chapters train and evaluate on synthetic data that kpedu generates
(:mod:`kpedu.data`); the loaders here read the data sets of the chapters' papers from
disk and return **the same structures**, so that every recipe, metric and figure works
on either. Each loader is a lazy, map-style ``torch.utils.data.Dataset`` (it scales to
the full data sets and to ``DataLoader`` workers) with a ``materialise(n)`` method that
loads ``n`` samples into the chapter's tensor structure for small runs (and the
function :func:`materialise`).

- :class:`CocoPersonCrops` and :class:`MPIIPeople`: single-person crops (Stacked
  Hourglass chapter, top-down) -> :class:`kpedu.foundations.PeopleTensors`;
- :class:`CocoScenes`: whole images with the loss mask of unlabelled people (OpenPose
  chapter, bottom-up) -> :class:`kpedu.openpose.experiment.SceneTensors`;
- :class:`CelebAFaces`: aligned faces with the MAFL landmarks (factorized spatial
  embeddings chapter) -> :class:`kpedu.data.FaceSet`;
- :class:`HPatchesSequences`: the matching benchmark (D2-Net chapter, evaluation) ->
  :class:`kpedu.data.pairs.PairSet` (or directly to ``kpedu.d2net.experiment.evaluate``);
- :class:`ImageFolderPairs`: homography pairs from any photographs (D2-Net chapter,
  training) -> :class:`kpedu.data.pairs.PairSet` and endless training batches.

On-disk layouts (``ROOT`` is the folder passed as ``root``; each module's docstring
gives the details, the conventions and the choices made):

COCO 2017 person keypoints (:mod:`kpedu.datasets.coco`)::

    ROOT/annotations/person_keypoints_{train,val}2017.json
    ROOT/images/{train,val}2017/*.jpg          or   ROOT/{train,val}2017/*.jpg

MPII Human Pose (:mod:`kpedu.datasets.mpii`)::

    ROOT/mpii_human_pose_v1_u12_1.mat          (or ROOT/mpii_human_pose_v1_u12_2/ or ROOT/annotations/)
    ROOT/images/*.jpg
    an optional validation list: one image name per line, or a JSON list (see the module)

CelebA with the MAFL split (:mod:`kpedu.datasets.celeba`)::

    ROOT/Img/img_align_celeba/*.jpg            or   ROOT/img_align_celeba/*.jpg
    ROOT/Anno/list_landmarks_align_celeba.txt  or   ROOT/list_landmarks_align_celeba.txt
    ROOT/Eval/list_eval_partition.txt          (optional)
    ROOT/MAFL/training.txt, ROOT/MAFL/testing.txt  (or directly in ROOT)

HPatches sequences (:mod:`kpedu.datasets.hpatches`)::

    ROOT/hpatches-sequences-release/{i_*,v_*}/1.ppm .. 6.ppm, H_1_2 .. H_1_6
    (or ROOT is hpatches-sequences-release itself)

A folder of photographs for D2-Net training pairs (:mod:`kpedu.datasets.folder`)::

    ROOT/**/*.{jpg,jpeg,png,ppm,pgm,bmp,tif,tiff,webp}

Videos as folders of frames for the Transporter (:mod:`kpedu.datasets.video`)::

    ROOT/<clip>/<frame>.{png,jpg,...}          (frames in natural file-name order)

Common behaviour (:mod:`kpedu.datasets._common`):

* a missing file or a wrong layout raises :class:`DatasetLayoutError` (a
  ``FileNotFoundError``) with one line naming what was expected, when the loader is built;
* images are decoded with OpenCV (``cv2.imdecode``, BGR turned into RGB) and carried as
  ``uint8`` until an item is returned (float32 in ``[0, 1]``, channels first);
* an image that cannot be decoded in a long run is skipped, never silently: it is listed
  in the loader's ``skipped`` attribute, the first ones (and every tenfold count) are
  announced by a ``RuntimeWarning``, ``report()`` warns with the count and the first
  names (``materialise`` calls it), and ``dataset[i]`` returns the next readable sample;
* geometry follows the book's convention (pixel row ``i``, column ``j`` has its centre at
  ``(x, y) = (j, i)``); crops and resizes are one affine map applied to the image
  (anti-aliased) and to the points alike.

:mod:`kpedu.datasets.fixtures` writes tiny data sets in these real layouts, for tests
and demos.
"""
from __future__ import annotations

from typing import Iterable

from ._common import DatasetLayoutError, ImageDataset, read_name_list, read_rgb
from .celeba import THEWLIS_WINDOW, CelebAFaces, read_celeba_landmarks
from .coco import CocoPersonCrops, CocoScenes, collate_scenes, find_coco, openpose_collate
from .folder import FolderPairBatches, ImageFolderPairs, list_images
from .hpatches import D2NET_EXCLUDED, HPatchesSequences, hpatches_sets, read_homography
from .mpii import MPII16, MPIIPeople, mpii_head_size, read_mpii
from .video import VideoFolder

__all__ = [
    "VideoFolder",
    "DatasetLayoutError",
    "ImageDataset",
    "read_rgb",
    "read_name_list",
    "materialise",
    "CocoPersonCrops",
    "CocoScenes",
    "collate_scenes",
    "openpose_collate",
    "find_coco",
    "MPIIPeople",
    "MPII16",
    "read_mpii",
    "mpii_head_size",
    "CelebAFaces",
    "THEWLIS_WINDOW",
    "read_celeba_landmarks",
    "HPatchesSequences",
    "hpatches_sets",
    "read_homography",
    "D2NET_EXCLUDED",
    "ImageFolderPairs",
    "FolderPairBatches",
    "list_images",
]


def materialise(dataset: ImageDataset, n: int | None = None, indices: Iterable[int] | None = None,
                progress: bool = False):
    """Load the first ``n`` samples of ``dataset`` (all by default), or ``indices``, into
    its chapter's tensor structure (the table above): ``dataset.materialise(...)``.
    Unreadable images are left out and reported."""
    if not isinstance(dataset, ImageDataset) or not callable(getattr(dataset, "materialise", None)):
        from .. import checks

        raise TypeError(f"dataset must be one of the kpedu.datasets loaders, got {checks.describe(dataset)}")
    return dataset.materialise(n=n, indices=indices, progress=progress)
