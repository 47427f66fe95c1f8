"""Run-time settings shared by every chapter: profile, device, seeding, banner.

The book runs in one of three *profiles*, chosen by the environment variable
``KPEDU_PROFILE`` and read here only (see the introduction, "Profiles"):

``ci``
    What the test-suite runs: tiny sizes and few steps so every notebook finishes in
    well under three minutes on two CPU cores. Asserts still check something real.
``book`` (default)
    What the rendered book and a reader's laptop or Colab run: headline numbers come
    from committed checkpoints, live training demonstrations take a few minutes.
``full``
    Reproduces the committed checkpoints from scratch (a GPU is recommended).

A profile changes numbers, never algorithms: notebooks call :func:`pick` to choose a
size and pass it to the same code path.
"""
from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "PROFILES",
    "resolve_profile",
    "Profile",
    "get_profile",
    "pick",
    "get_device",
    "seed_everything",
    "banner",
    "setup",
    "amp_dtype",
    "native_bf16",
]

PROFILES = ("ci", "book", "full")
T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """The active profile. ``name`` is one of :data:`PROFILES`."""

    name: str

    def pick(self, ci: T, book: T, full: T | None = None) -> T:
        """Return the value for this profile (``full`` defaults to ``book``)."""
        if self.name == "ci":
            return ci
        if self.name == "full":
            return book if full is None else full
        return book

    @property
    def is_ci(self) -> bool:
        return self.name == "ci"


def get_profile() -> Profile:
    """Read ``KPEDU_PROFILE`` (default ``book``) and validate it."""
    name = os.environ.get("KPEDU_PROFILE", "book").strip().lower() or "book"
    if name not in PROFILES:
        raise ValueError(
            f"KPEDU_PROFILE={name!r} is not a profile; choose one of {', '.join(PROFILES)}"
        )
    return Profile(name)


def resolve_profile(profile: "Profile | str | None" = None) -> Profile:
    """A :class:`Profile` from a profile, a profile name, or ``None`` (the active one,
    :func:`get_profile`); every chapter recipe's ``profile`` argument goes through it."""
    if profile is None or profile == "":
        return get_profile()
    if isinstance(profile, Profile):
        return profile
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return Profile(profile)


def pick(ci: T, book: T, full: T | None = None) -> T:
    """Shortcut for ``get_profile().pick(ci, book, full)``."""
    return get_profile().pick(ci, book, full)


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the compute device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the environment variable ``KPEDU_DEVICE``) forces a device, e.g.
    ``"cpu"``. Asking for an unavailable device raises a clear error.
    """
    prefer = prefer or os.environ.get("KPEDU_DEVICE")
    if prefer:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CUDA was requested but torch.cuda.is_available() is False")
        if dev.type == "mps" and not (
            hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
        ):
            raise RuntimeError("MPS was requested but is not available on this machine")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device | str) -> bool:
    """Does the CUDA ``device`` compute in bfloat16 natively?

    Tensor cores with bfloat16 arrived with compute capability 8.0 (Ampere; also Ada and
    Hopper). ``torch.cuda.is_bf16_supported()`` alone also answers yes on older GPUs
    such as Colab's T4 (7.5), where bfloat16 is emulated and slow, so the capability is
    checked and emulation is not counted. False for any device that is not CUDA.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return False
    major, _minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # an older torch without the argument: capability 8.0+ is native
        return True


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype used for mixed precision on ``device`` (None: full precision).

    CUDA uses bfloat16 where the GPU has it natively (compute capability 8.0 and up,
    :func:`native_bf16`; no loss scaling needed), and float16 otherwise (for example on a
    T4, compute capability 7.5), which :func:`kpedu.train.fit` pairs with a gradient
    scaler. CPU and MPS train in float32: the book's CPU numbers are exact.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if native_bf16(device) else torch.float16


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so a notebook run is repeatable."""
    from . import checks

    seed = checks.integer(seed, "seed", minimum=0)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def banner(profile: Profile | None = None, device: torch.device | None = None, seed: Any = None) -> str:
    """One line describing the run: kpedu and torch versions, profile, device, seed."""
    from . import __version__

    profile = profile or get_profile()
    device = device or get_device()
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    parts = [
        f"kpedu {__version__}",
        f"torch {torch.__version__}",
        f"python {platform.python_version()}",
        f"profile={profile.name}",
        f"device={dev}",
        f"threads={torch.get_num_threads()}",
    ]
    if seed is not None:
        parts.append(f"seed={seed}")
    return " | ".join(parts)


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` returns to a notebook."""

    profile: Profile
    device: torch.device
    seed: int

    def pick(self, ci: T, book: T, full: T | None = None) -> T:
        return self.profile.pick(ci, book, full)


def setup(seed: int = 0, device: str | None = None, quiet: bool = False) -> Setup:
    """The one call at the top of every notebook: seed, device, profile banner.

    Returns a :class:`Setup` with ``profile``, ``device`` and ``seed``; its ``pick``
    method chooses a number by profile.
    """
    seed_everything(seed)
    prof = get_profile()
    dev = get_device(device)
    if not quiet:
        print(banner(prof, dev, seed))
    return Setup(prof, dev, int(seed))
