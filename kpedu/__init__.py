"""kpedu: the implementations behind kp-book, an executable textbook on keypoint detection.

Submodules (import them by name, e.g. ``from kpedu import codecs``):

- :mod:`kpedu.runtime`  profile, device, seeding, notebook banner
- :mod:`kpedu.data`     skeleton metainfo, synthetic people, faces and image pairs, COCO keypoint JSON
- :mod:`kpedu.datasets` loaders for the real data sets (COCO, MPII, CelebA/MAFL, HPatches,
  image folders), read in their publishers' layouts
- :mod:`kpedu.codecs`   heatmap encoding and decoding (argmax, quarter offset, soft-argmax)
- :mod:`kpedu.metrics`  PCK / PCKh, NME, OKS and COCO AP (through pycocotools)
- :mod:`kpedu.viz`      skeletons, heatmap overlays, prediction grids
- :mod:`kpedu.train`    the training loop, ``load_or_train``
- :mod:`kpedu.checkpointing` checkpoint files and registry look-ups (used by train and hub)
- :mod:`kpedu.distributed` data parallelism under ``torchrun``: each rank its share of the data
- :mod:`kpedu.hub`      the registry of committed checkpoints and the recipes that make them
- :mod:`kpedu.widgets`  interactive explorers with a static fallback
- :mod:`kpedu.survey`   the reading list as data: the survey chapter's table, figures and bibliography

Chapter packages: :mod:`kpedu.hourglass`, :mod:`kpedu.openpose`, :mod:`kpedu.fse`,
:mod:`kpedu.d2net`, :mod:`kpedu.transporter` (with its videos in :mod:`kpedu.data.videos`).
"""
from importlib import metadata as _metadata

try:  # the version is written once, in pyproject.toml; an installed kpedu carries it in its metadata
    __version__ = _metadata.version("kpedu")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
