"""A picture's hashes as partners' tools compute and write them, for exchange.

Partners exchange hashes, not pictures; a hash is only useful to them if it is
the one their tool computes from the same file. So each hash here is computed
from the file decoded the way its reference decodes it (full size, Pillow, first
frame), not from quaid's normalised working picture, and written in its
reference's format:

================  ===========================================  =========================================
name              reference and format                         decoding
================  ===========================================  =========================================
ahash,            ImageHash (``average_hash``, ``phash``,       as opened; ImageHash converts to ``L``
phash,            ``dhash``, ``whash``, defaults): ``str()``,   (Rec.601 grey, transparency dropped,
dhash,            16 hex digits                                 no EXIF rotation)
whash
pdq               ThreatExchange's ``pdq_hasher`` (pdqhash):    ``np.asarray`` of the picture as opened
                  64 hex digits, hash bit 0 first (the most     (``LA`` to RGB, grey repeated in three
                  significant), lower case; ``pdq_quality``     channels; palette pictures hash their
                  0-100 beside it; both null for pictures of    indices, as the reference does)
                  more than 8 bits a channel, which the
                  reference refuses
goldberg          image-match 1.1.2 ``generate_signature``:     ``convert("RGB")`` (transparency
                  the 648 signature values as a list of ints    dropped, no EXIF rotation)
forbild           forbild-hashing (37b28ca) ``to_string_hex``:  the ``image`` crate's: grey pictures as
                  256 bits row-major, 64 upper-case hex         they are, colour ones through its luma,
                  digits, most significant bit first            alpha ignored, no EXIF rotation
phash_dct_base64  perception 0.9.3 ``PHash().compute(path)``    OpenCV's ``imread``: EXIF orientation
                  (:mod:`engine.perception_phash`): 64 bits,    applied, transparency dropped, 16-bit
                  base64 (12 characters)                        channels scaled to their top byte
tlsh              quaid's pixel TLSH: the ``T1`` digest, or     quaid's normalised picture
                  null when TLSH refuses (too little variety)
================  ===========================================  =========================================

Known decoding differences from the references: 16-bit pictures are reduced
to 8 bits by Pillow where the ``image`` crate (ForBild) keeps 16 bits through
its resize; JPEG is decoded by libjpeg where the crate uses its own decoder
(the crate's own JPEG test vector is still reproduced exactly).
"""

from __future__ import annotations

import io
import warnings
from contextlib import nullcontext

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from engine.algorithms import forbild, goldberg, image_rs
from engine.algorithms.pixel_tlsh import NULL, PixelTLSH
from engine.budget import PixelBudget
from engine.errors import NotAPicture
from engine.perception_phash import phash_dct_base64
from engine.picture import ACCEPTED_FORMATS, DEFAULT_MAX_PIXELS, DEFAULT_WORKING_SIDE, load_picture

IMAGEHASHES = (
    ("ahash", imagehash.average_hash),
    ("phash", imagehash.phash),
    ("dhash", imagehash.dhash),
    ("whash", imagehash.whash),
)


def hash_record(data: bytes, file: str, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                working_side: int = DEFAULT_WORKING_SIDE, budget: PixelBudget | None = None) -> dict:
    """``{"file", "id", "hashes": {name: value}}`` of one picture file's bytes.

    Refuses what quaid refuses (:func:`engine.picture.load_picture`: format, size, damage)
    before any reference sees the bytes; the full-size decode the references need is
    reserved in ``budget`` like any other decode.
    """
    picture = load_picture(data, max_pixels=max_pixels, working_side=working_side, budget=budget)
    size = picture.original_width * picture.original_height
    with budget.reserve(size) if budget is not None else nullcontext():
        hashes = _reference_hashes(_reference_image(data))
    digest = PixelTLSH().extract(picture)
    hashes["tlsh"] = None if digest == NULL else digest.decode("ascii")
    return {"file": file, "id": picture.sha256, "hashes": hashes}


def _reference_hashes(image: Image.Image) -> dict[str, object]:
    hashes: dict[str, object] = {name: str(function(image)) for name, function in IMAGEHASHES}
    hashes["pdq"], hashes["pdq_quality"] = pdq_hex(image)
    hashes["goldberg"] = goldberg.signature(np.asarray(image.convert("RGB"))).tolist()
    hashes["forbild"] = forbild_hex(image)
    hashes["phash_dct_base64"] = phash_dct_base64(image)
    return hashes


def _reference_image(data: bytes) -> Image.Image:
    """The first frame at full size, as Pillow opens it (what the references read)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            image.seek(0)
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # load_picture accepted it: rare
        raise NotAPicture(f"corrupt or truncated picture: {exc}") from None
    return image


def pdq_hex(image: Image.Image) -> tuple[str | None, int | None]:
    """ThreatExchange's ``pdq_from_bytes``: (64 hex digits, hash bit 0 most significant; quality).

    (None, None) where that hasher fails: pictures of more than 8 bits a channel (pdqhash
    takes bytes only).
    """
    if image.mode == "LA":
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.dtype not in (np.uint8, np.bool_):
        return None, None
    bits, quality = pdqhash.compute(np.ascontiguousarray(array))
    value = int("".join(str(int(bit)) for bit in bits), 2)
    return f"{value:064x}", int(quality)


def forbild_hex(image: Image.Image) -> str:
    """The ForBild reference's hex hash of a picture as Pillow opens it."""
    return forbild.to_hex(forbild.feature(forbild.grey16(_crate_grey(image))))


def _crate_grey(image: Image.Image) -> np.ndarray:
    """The ``image`` crate's ``grayscale``: grey pictures unchanged, colour ones through its luma."""
    if image.mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    if image.mode == "LA":
        return np.asarray(image.getchannel("L"))
    if image.mode.startswith("I"):
        return np.asarray(image.convert("L"))  # 16-bit: Pillow's reduction (see the module docstring)
    return image_rs.grayscale(np.asarray(image.convert("RGB")))
