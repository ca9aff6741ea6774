"""Procedural solid textures for the synthetic worlds (Chapter 1).

Textures are functions of the *world* position of a surface point, expressed in the scene's
texture units (metres divided by the scene scale), so that scaling a whole scene — the
dollhouse experiment — leaves every pixel's colour unchanged. Noise uses an integer hash, so
textures are identical on every device and platform.
"""

from __future__ import annotations

import torch

__all__ = ["TEXTURE_KINDS", "value_noise", "pattern"]

#: Texture kinds by index. ``plain``: paint with faint mottling; ``planks``: wooden floor boards
#: along x; ``tiles``: square tiles with grout in x/z; ``stripes``: vertical wallpaper stripes;
#: ``grain``: fine wood/fabric grain; ``shelf``: horizontal shelf lines; ``window``: glazing with
#: mullions; ``carpet``: high-frequency fibre noise.
TEXTURE_KINDS = ("plain", "planks", "tiles", "stripes", "grain", "shelf", "window", "carpet")


_PRIMES = (73856093, 19349663, 83492791)


def _mix(h: torch.Tensor) -> torch.Tensor:
    """Final avalanche of a lattice hash, to [0, 1)."""
    h = (h ^ (h >> 15)) * 2654435761
    return ((h >> 8) & 0xFFFF).to(torch.float32) * (1.0 / 65536.0)


def _hash3(ix: torch.Tensor, iy: torch.Tensor, iz: torch.Tensor) -> torch.Tensor:
    """Integer lattice hash to [0, 1), identical on every device (int64 arithmetic)."""
    return _mix((ix * _PRIMES[0]) ^ (iy * _PRIMES[1]) ^ (iz * _PRIMES[2]))


def value_noise(p: torch.Tensor) -> torch.Tensor:
    """Trilinear value noise in [0, 1) at ``(..., 3)`` positions (lattice spacing 1)."""
    f = torch.floor(p)
    i = f.to(torch.int64)
    w = p - f
    w = w * w * (3.0 - 2.0 * w)  # smoothstep
    # per-axis hashed lattice coordinates for the two neighbours along each axis
    hx = (i[..., 0] * _PRIMES[0], (i[..., 0] + 1) * _PRIMES[0])
    hy = (i[..., 1] * _PRIMES[1], (i[..., 1] + 1) * _PRIMES[1])
    hz = (i[..., 2] * _PRIMES[2], (i[..., 2] + 1) * _PRIMES[2])
    wx, wy, wz = (1.0 - w[..., 0], w[..., 0]), (1.0 - w[..., 1], w[..., 1]), (1.0 - w[..., 2], w[..., 2])
    out = torch.zeros(p.shape[:-1], dtype=p.dtype, device=p.device)
    for a in (0, 1):
        for b in (0, 1):
            hxy = hx[a] ^ hy[b]
            wxy = wx[a] * wy[b]
            out = out + wxy * (wz[0] * _mix(hxy ^ hz[0]).to(p.dtype) + wz[1] * _mix(hxy ^ hz[1]).to(p.dtype))
    return out


def _pattern_one(k: int, period: torch.Tensor, p: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """The pattern of texture kind ``k`` at ``(N, 3)`` points (see :func:`pattern`)."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    off = (seed % 4096).to(p.dtype)[:, None] * 17.0
    q = p / period[:, None] + off
    name = TEXTURE_KINDS[k]
    if name == "plain":  # paint with faint mottling
        return 0.92 + 0.12 * value_noise(q * 0.7)
    if name == "planks":  # boards of width `period` along x, each with its own tone and a dark seam
        u = x / period
        board = torch.floor(u)
        tone = _hash3(board.to(torch.int64), seed, torch.zeros_like(seed)).to(p.dtype)
        seam = ((u - board) < 0.04).to(p.dtype)
        grain = value_noise(torch.stack([u * 2.0, y, z * 0.6 / period], -1) + off)
        return (0.75 + 0.35 * tone + 0.15 * grain) * (1.0 - 0.45 * seam)
    if name == "tiles":  # square tiles of side `period` in x/z with grout lines
        tu, tz = x / period, z / period
        fu, fz = torch.floor(tu), torch.floor(tz)
        grout = (((tu - fu) < 0.035) | ((tz - fz) < 0.035)).to(p.dtype)
        tone = _hash3(fu.to(torch.int64), fz.to(torch.int64), seed).to(p.dtype)
        return (0.9 + 0.12 * tone) * (1.0 - 0.35 * grout)
    if name == "stripes":  # vertical wallpaper stripes along the horizontal direction
        s = (x + z) / period
        return 0.93 + 0.10 * torch.remainder(torch.floor(s * 2.0), 2.0)
    if name == "grain":  # elongated noise, like wood or fabric
        g = value_noise(torch.stack([x * 8.0 / period, y * 0.8 / period, z * 8.0 / period], -1) + off)
        return 0.8 + 0.3 * g
    if name == "shelf":  # horizontal lines every `period` with book-like blocks between them
        sh = y / period
        line = ((sh - torch.floor(sh)) < 0.08).to(p.dtype)
        books = _hash3(torch.floor((x + z) * 12.0 / period).to(torch.int64),
                       torch.floor(sh).to(torch.int64), seed).to(p.dtype)
        return (0.55 + 0.6 * books) * (1.0 - 0.5 * line)
    if name == "window":  # bright glazing with dark mullions every `period`
        wu, wy = (x + z) / period, y / period
        mullion = (((wu - torch.floor(wu)) < 0.06) | ((wy - torch.floor(wy)) < 0.06)).to(p.dtype)
        return (1.0 + 0.1 * torch.sin(wy * 0.7 + wu * 0.3)) * (1.0 - 0.7 * mullion)
    if name == "carpet":  # high-frequency fibre noise
        return 0.85 + 0.25 * value_noise(q * 20.0)
    raise ValueError(f"unknown texture kind {k}")


def pattern(kind: torch.Tensor, period: torch.Tensor, p: torch.Tensor, seed: torch.Tensor,
            kinds_present: list[int] | None = None) -> torch.Tensor:
    """Multiplicative brightness pattern (around 1) for each surface point.

    Args:
        kind: ``(N,)`` int texture kind (index into :data:`TEXTURE_KINDS`).
        period: ``(N,)`` characteristic length of the pattern in texture units.
        p: ``(N, 3)`` positions in texture units (world metres / scene scale).
        seed: ``(N,)`` int64 per-material offsets, so that equal kinds still differ.
        kinds_present: the kinds that occur in ``kind``, if the caller knows them (saves a scan).

    Returns:
        ``(N,)`` factors in roughly ``[0.3, 1.3]``; each kind is evaluated only where it is used.
    """
    out = torch.ones(p.shape[0], dtype=p.dtype, device=p.device)
    for k in (kinds_present if kinds_present is not None else torch.unique(kind).tolist()):
        sel = kind == k
        out[sel] = _pattern_one(int(k), period[sel], p[sel], seed[sel])
    return out
