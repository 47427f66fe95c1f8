"""Data for the book: skeleton metainfo, synthetic people and faces, backgrounds, COCO keypoint JSON.

Foundations chapter (and the Transporter chapter's videos). Everything is generated on the
fly or bundled with the package; no network access is needed at run time.

- :mod:`kpedu.data.skeleton`     :class:`Skeleton`, :func:`load_skeleton`, :data:`COCO17`
- :mod:`kpedu.data.people`       :func:`make_person`, :func:`make_scene`, :class:`SyntheticPeople`
- :mod:`kpedu.data.crops`        :func:`make_people`, :class:`PeopleTensors` (single-person crops
  held as tensors, the Foundations and Stacked Hourglass chapters' data)
- :mod:`kpedu.data.backgrounds`  :func:`make_background` (noise, textures, bundled photos)
- :mod:`kpedu.data.faces`        :func:`make_face`, :class:`SyntheticFaces`, :func:`make_faces`,
  :class:`FaceSet`, :data:`FACE_LANDMARKS` (procedural faces with exact landmarks, the
  factorized spatial embeddings chapter, book/ch03-fse)
- :mod:`kpedu.data.videos`       :func:`~kpedu.data.videos.make_people_videos`,
  :func:`~kpedu.data.videos.make_object_videos`, :class:`~kpedu.data.videos.VideoSet`
  (clips with exact ground truth, the Transporter chapter, book/ch06-transporter)
- :mod:`kpedu.data.coco`         :func:`to_coco`, :func:`write_coco`, :func:`read_coco`,
  :func:`results_to_coco`
"""
from .backgrounds import BACKGROUND_KINDS, PHOTO_NAMES, load_photo, make_background
from .coco import (
    CocoImage,
    CocoKeypoints,
    as_pycocotools,
    read_coco,
    results_to_coco,
    to_coco,
    write_coco,
)
from .faces import (
    FACE_LANDMARKS,
    MAFL_INDICES,
    FaceSample,
    FaceSet,
    SyntheticFaces,
    make_face,
    make_faces,
)
from .people import (
    KEYPOINT_PARTS,
    NUM_PARTS,
    PART_NAMES,
    PERSON_FIELDS,
    Sample,
    SyntheticPeople,
    collate_people,
    make_person,
    make_scene,
    render_labels_to_parts,
)
from .skeleton import COCO17, Skeleton, available_skeletons, load_skeleton
from .crops import PeopleTensors, make_people

__all__ = [
    "Skeleton",
    "load_skeleton",
    "available_skeletons",
    "COCO17",
    "Sample",
    "make_person",
    "make_scene",
    "SyntheticPeople",
    "collate_people",
    "PART_NAMES",
    "NUM_PARTS",
    "KEYPOINT_PARTS",
    "PERSON_FIELDS",
    "render_labels_to_parts",
    "PeopleTensors",
    "make_people",
    "make_background",
    "load_photo",
    "PHOTO_NAMES",
    "BACKGROUND_KINDS",
    "FACE_LANDMARKS",
    "MAFL_INDICES",
    "FaceSample",
    "make_face",
    "SyntheticFaces",
    "FaceSet",
    "make_faces",
    "to_coco",
    "write_coco",
    "read_coco",
    "results_to_coco",
    "as_pycocotools",
    "CocoKeypoints",
    "CocoImage",
]
