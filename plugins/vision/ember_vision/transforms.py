"""Image transforms: decode, convert mode, resize, normalise, and batch augmentation.

Two stages, as in fastai:

- **Item transforms** run on the CPU (in loader workers when ``num_workers > 0``), once per
  image: decode a file (torchvision.io, PIL for other formats), convert to the dataset's one mode
  (``"L"`` or ``"RGB"``), and resize deterministically (bilinear with antialiasing, "squish" to
  the exact size). Validation and inference use exactly these steps, nothing random.
- **Batch augmentation** runs on the training device, on whole batches, as the
  :class:`BatchAugment` callback. It touches training batches only; validation, ``get_preds``
  and inference never see it. The default (:class:`RandomBatchAugment`) is vectorised: one
  fused affine warp and one lighting change for the whole batch, with parameters drawn per
  image. Any torchvision.transforms.v2 transform can replace it (applied per image, or per
  batch with ``per_item=False``).

Default augmentation (:func:`default_augmentation`), drawn independently for every image:

============================  ==========================================================
flip                          horizontal flip with probability 0.5
affine                        rotation ±10°, translation ±10 %, scale 0.9-1.1 (p = 0.75)
lighting                      brightness and contrast ±20 % (p = 0.75)
random-resized-crop           area 75-100 %, aspect ratio 3/4-4/3, back to the input size
============================  ==========================================================

Small images (at most 32 pixels a side, such as Fashion-MNIST's 28x28) get a light recipe:
the flip and the ±10 % translation only (the classic pad-and-crop shift of a few pixels). On
so few pixels a rotation, a rescale or a 75 % crop destroys much of the evidence, and models
for small images are small and trained briefly, so the strong recipe costs more accuracy than
it buys in regularisation.

Example:
    >>> import numpy as np
    >>> image = to_image_tensor(np.zeros((5, 7), dtype=np.uint8))
    >>> tuple(image.shape), image.dtype
    ((1, 5, 7), torch.uint8)
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

import ember

__all__ = [
    "MODES",
    "BatchAugment",
    "RandomBatchAugment",
    "convert_mode",
    "default_augmentation",
    "denormalize",
    "load_image",
    "normalize",
    "normalize_float",
    "read_image_mode",
    "resize_image",
    "to_image_tensor",
]

#: Image modes Ember's vision data uses, with their channel counts.
MODES = {"L": 1, "RGB": 3}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                  ".pgm")


def _fix_for_corrupt(name: str) -> str:
    return (f"image {name} cannot be read (corrupt, truncated or not an image); delete or "
            f"replace the file")


def _too_large(name: str, error: Exception) -> ember.DataError:
    """The error for an image PIL refuses to open as a possible decompression bomb."""
    return ember.DataError(
        f"image {name} is too large to decode safely ({error}); send a smaller image, or "
        f"raise PIL.Image.MAX_IMAGE_PIXELS if you trust its source")


def read_image_mode(path: str | Path) -> tuple[str, tuple[int, int]]:
    """The PIL mode and (height, width) of an image file, reading only its header; the size
    is that of the upright image (see :func:`load_image`).

    Example:
        >>> # read_image_mode("cat.png") -> ('RGB', (375, 500))
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if _orientation(image) in _TURNED:
                return image.mode, (image.width, image.height)
            return image.mode, (image.height, image.width)
    except FileNotFoundError:
        raise ember.DataError(f"image {path} does not exist; check the path") from None
    except Image.DecompressionBombError as error:  # no OSError: PIL refuses the header
        raise _too_large(str(path), error) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ember.DataError(_fix_for_corrupt(str(path))) from None


#: EXIF orientations (the tag 0x0112) whose upright image swaps height and width.
_TURNED = (5, 6, 7, 8)


def _orientation(image: Any) -> int:
    """The EXIF orientation of a PIL image: 1 (upright, or no tag) to 8."""
    orientation = image.getexif().get(0x0112, 1)
    return orientation if orientation in range(1, 9) else 1


def _upright(image: Any) -> Any:
    """A PIL image turned as its EXIF orientation tag says (a phone's portrait photo is
    stored sideways with such a tag), so pixels are what every viewer shows; one without a
    tag is returned as it is."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(image) if _orientation(image) != 1 else image


def _eight_bit(image: Any) -> Any:
    """Integer greyscale ("I;16…" and "I") scaled from 16 to 8 bits (65535 → 255), not clipped
    as PIL's own conversion does; other modes unchanged.

    Mode "I" is what Pillow gives 16-bit PGM files (rescaled to 0-65535 whatever their maximum)
    and 32-bit integer TIFFs, so it is read as 16-bit data too, values above 65535 clipped.
    Every image of a mode is scaled alike: a dark 16-bit image is not mistaken for 8-bit data
    because its brightest pixel is below 256."""
    from PIL import Image

    if not image.mode.startswith("I"):
        return image
    return Image.fromarray(_sixteen_to_eight_bits(np.asarray(image)), "L")


def _sixteen_to_eight_bits(array: np.ndarray) -> np.ndarray:
    """16-bit pixel values as 8-bit ones (65535 → 255, rounded), clipped at 255 (mode "I"
    holds 32-bit integers)."""
    return np.clip(np.rint(array.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def _pil_in_mode(image: Any, mode: str | None) -> Any:
    """A PIL image in ``mode``, or (without one) in "L" or "RGB", whichever keeps its content:
    16-bit grey scaled to 8 bits, palette and CMYK images to RGB, bilevel to 0/255 grey, an
    alpha channel dropped."""
    image = _eight_bit(image)
    if mode is not None:
        return image.convert(mode)
    if image.mode not in MODES:
        return image.convert("L" if image.mode in ("1", "I", "I;16", "F", "LA") else "RGB")
    return image


def load_image(path: str | Path | IO[bytes], mode: str | None = None, name: str | None = None
               ) -> Tensor:
    """Decode an image file into a ``uint8`` tensor of shape (channels, height, width).

    With ``mode`` ("L" or "RGB") the image is converted to that mode; otherwise it keeps its
    own (an alpha channel is dropped, palette images become RGB). A photo with an EXIF
    orientation tag is turned upright, as viewers show it. Decoding uses PIL, which reads
    every common format, and fails with an :class:`ember.DataError` naming the file. 16-bit
    greyscale (PIL modes "I;16" and "I", as 16-bit PNG, TIFF and PGM files open) is scaled to
    8 bits (65535 → 255), never clipped.

    Example:
        >>> # load_image("cat.jpg", "RGB").shape -> torch.Size([3, 375, 500])
    """
    from PIL import Image, UnidentifiedImageError

    if mode is not None and mode not in MODES:  # else PIL's refusal reads as a corrupt file
        raise ember.DataError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    try:
        with Image.open(path) as image:
            image.load()
            array = np.asarray(_pil_in_mode(_upright(image), mode), dtype=np.uint8)
    except FileNotFoundError:
        raise ember.DataError(f"image {path} does not exist; check the path") from None
    except Image.DecompressionBombError as error:  # no OSError: a server's upload, say
        raise _too_large(name or str(path), error) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ember.DataError(_fix_for_corrupt(name or str(path))) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def to_image_tensor(item: Any, name: str = "item", mode: str | None = None) -> Tensor:
    """Turn one raw image into a ``uint8`` tensor (channels, height, width).

    Accepts a file path (str or Path), encoded file bytes (PNG, JPEG… as sent to
    ``ember serve``), a PIL image, a NumPy array laid out (H, W) or
    (H, W, C), or a torch tensor laid out (H, W) or (C, H, W). ``uint8`` values are used as
    they are; ``uint16`` values are scaled to 8 bits (65535 → 255) as 16-bit files are;
    booleans (a bilevel image, as NumPy gives PIL's mode "1") are 0 and 255;
    floating-point values must lie in [0, 1] and are scaled to 0-255 and rounded; other
    integers must lie in 0-255.

    Example:
        >>> import torch
        >>> to_image_tensor(torch.ones(3, 4, 4)).max().item()
        255
    """
    if isinstance(item, (str, Path)):
        return load_image(item, mode)
    if isinstance(item, (bytes, bytearray)):
        return load_image(io.BytesIO(item), mode, name=f"{name} (encoded image bytes)")
    if type(item).__module__.startswith("PIL."):
        item = np.asarray(_pil_in_mode(_upright(item), mode), dtype=np.uint8)
    if isinstance(item, np.ndarray):
        if item.ndim == 2:
            item = item[:, :, None]
        if item.ndim != 3:
            raise ember.DataError(
                f"{name}: a NumPy image must have shape (H, W) or (H, W, C), got {item.shape}")
        if item.shape[-1] not in (1, 2, 3, 4) and item.shape[0] in (1, 3, 4):
            raise ember.DataError(
                f"{name}: a NumPy image is laid out (H, W, C), but {item.shape} is channels "
                f"first; give np.moveaxis(image, 0, -1), or a torch tensor (C, H, W)")
        if item.shape[-1] not in (1, 2, 3, 4):
            raise ember.DataError(_not_one_image(name, item.shape, "(H, W, C)"))
        tensor = torch.from_numpy(np.array(item)).permute(2, 0, 1)
    elif isinstance(item, Tensor):
        tensor = item.detach().cpu()
        if tensor.ndim == 2:
            tensor = tensor[None]
        if tensor.ndim != 3:
            raise ember.DataError(
                f"{name}: an image tensor must have shape (H, W) or (C, H, W), got "
                f"{tuple(tensor.shape)}")
        if tensor.shape[0] not in (1, 2, 3, 4) and tensor.shape[-1] in (1, 3, 4):
            raise ember.DataError(
                f"{name}: an image tensor is laid out (C, H, W), but {tuple(tensor.shape)} is "
                f"channels last; give image.permute(2, 0, 1), or a NumPy array (H, W, C)")
        if tensor.shape[0] not in (1, 2, 3, 4):
            raise ember.DataError(_not_one_image(name, tuple(tensor.shape), "(C, H, W)"))
    else:
        raise ember.DataError(
            f"{name} is a {type(item).__name__}; give an image path, a PIL image, a NumPy array "
            f"(H, W[, C]) or a tensor ([C,] H, W)")
    return _as_uint8(tensor, name).contiguous()


def _not_one_image(name: str, shape: tuple[int, ...], layout: str) -> str:
    """Why an item of three axes, none of them 1-4 channels where ``layout`` puts them, is
    not read as an image (a stack of grey images, most often)."""
    return (f"{name} has shape {shape}: not one image {layout} with 1 to 4 channels; give "
            f"several images to predict_batch as a list, one image at a time to predict")


def _as_uint8(tensor: Tensor, name: str) -> Tensor:
    if tensor.dtype == torch.uint8:
        return tensor
    if tensor.dtype == torch.bool:  # a bilevel image as NumPy gives it: white is 255, as PIL
        return tensor.to(torch.uint8) * 255
    if tensor.dtype == torch.uint16:  # 16-bit pixels: 65535 -> 255, as 16-bit files are read
        return torch.from_numpy(_sixteen_to_eight_bits(tensor.cpu().numpy()))
    if tensor.dtype in (torch.uint32, torch.uint64):  # torch has no min/max for these
        tensor = tensor.to(torch.int64)
    if tensor.is_floating_point():
        if tensor.numel() and (not torch.isfinite(tensor).all() or tensor.min() < 0
                               or tensor.max() > 1):
            raise ember.DataError(
                f"{name}: floating-point image values must lie in [0, 1]; give uint8 pixels "
                f"(0-255) or scale the image by 1/255")
        return (tensor * 255).round().to(torch.uint8)
    if tensor.numel() and (tensor.min() < 0 or tensor.max() > 255):
        raise ember.DataError(f"{name}: integer pixel values must lie in 0-255")
    return tensor.to(torch.uint8)


def convert_mode(image: Tensor, mode: str, name: str = "item") -> Tensor:
    """Convert a ``uint8`` (C, H, W) image to ``mode`` ("L": 1 channel, "RGB": 3 channels).

    Grey becomes RGB by repeating the channel, RGB becomes grey with ITU-R 601 weights (PIL's
    exact integer formula), and a fourth (alpha) channel is dropped.

    Example:
        >>> import torch
        >>> convert_mode(torch.zeros(1, 2, 2, dtype=torch.uint8), "RGB").shape
        torch.Size([3, 2, 2])
    """
    if mode not in MODES:
        raise ember.DataError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    channels = image.shape[0]
    if channels in (2, 4):
        image, channels = image[:-1], channels - 1
    if channels == MODES[mode]:
        return image
    if channels == 1 and mode == "RGB":
        return image.expand(3, -1, -1).contiguous()
    if channels == 3 and mode == "L":  # PIL's exact integer formula, so both paths agree
        weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32).view(3, 1, 1)
        grey = ((image.to(torch.int32) * weights).sum(dim=0, keepdim=True) + 0x8000) >> 16
        return grey.to(torch.uint8)
    raise ember.DataError(f"{name} has {channels} channels; cannot convert it to mode {mode!r}")


def resize_image(image: Tensor, size: Sequence[int] | None) -> Tensor:
    """Resize a (C, H, W) image to exactly ``size`` = (height, width), deterministically
    (bilinear, antialiased; the aspect ratio is not kept). ``None`` leaves it as it is.

    Example:
        >>> import torch
        >>> resize_image(torch.zeros(1, 10, 20, dtype=torch.uint8), (5, 5)).shape
        torch.Size([1, 5, 5])
    """
    if size is None or tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.resize(image, list(size), interpolation=v2.InterpolationMode.BILINEAR,
                    antialias=True)


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``uint8`` batch (N, C, H, W) → float32, scaled to [0, 1], then standardised per channel.

    Example:
        >>> import torch
        >>> normalize(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8), [0.5], [0.5]).max().item()
        1.0
    """
    return normalize_float(images.float() / 255, mean, std)


def denormalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Undo :func:`normalize` (to floats in [0, 1], not clamped).

    Example:
        >>> import torch
        >>> denormalize(torch.zeros(1, 1, 1, 1), [0.5], [0.25]).item()
        0.5
    """
    mean_tensor, std_tensor = _per_channel(mean, images), _per_channel(std, images)
    return images * std_tensor + mean_tensor


class RandomBatchAugment:
    """Ember's default batch augmentation, vectorised on the device: every image of the batch
    gets its own random flip, affine warp (rotation, scale, translation) and
    random-resized-crop, fused into one affine warp (one ``grid_sample`` call, reflection
    padding), then its own brightness and contrast change. Works on float (N, C, H, W) batches
    in [0, 1] and keeps their size.

    Torchvision's v2 transforms draw one set of parameters per call, so per-image randomness
    with them means one call per image (about 20 ms per 28x28 image on a CPU); this class gives
    the same augmentations for the whole batch at once. Any v2 transform can still be used
    instead: ``BatchAugment(v2.RandomRotation(15))``.

    Example:
        >>> import torch
        >>> augment = RandomBatchAugment()
        >>> augment(torch.rand(4, 3, 16, 16)).shape
        torch.Size([4, 3, 16, 16])
    """

    def __init__(self, flip: bool = True, max_rotate: float = 10.0, max_translate: float = 0.1,
                 scale: tuple[float, float] = (0.9, 1.1), min_crop: float = 0.75,
                 crop_ratio: tuple[float, float] = (3 / 4, 4 / 3), lighting: float = 0.2,
                 p_affine: float = 0.75, p_lighting: float = 0.75) -> None:
        self.flip, self.max_rotate, self.max_translate = flip, max_rotate, max_translate
        self.scale, self.min_crop, self.crop_ratio = scale, min_crop, crop_ratio
        self.lighting, self.p_affine, self.p_lighting = lighting, p_affine, p_lighting

    def __repr__(self) -> str:
        return (f"RandomBatchAugment(flip={self.flip}, max_rotate={self.max_rotate}, "
                f"max_translate={self.max_translate}, scale={self.scale}, "
                f"min_crop={self.min_crop}, lighting={self.lighting})")

    def matrices(self, n: int, device: torch.device) -> Tensor:
        """Random (n, 2, 3) affine matrices mapping output to input coordinates in [-1, 1]."""

        def uniform(low: float, high: float) -> Tensor:
            return torch.empty(n, device=device).uniform_(low, high)

        applies = (torch.rand(n, device=device) < self.p_affine).float()
        angle = uniform(-self.max_rotate, self.max_rotate) * math.pi / 180 * applies
        zoom = 1 + (uniform(*self.scale) - 1) * applies
        shift_x = uniform(-self.max_translate, self.max_translate) * 2 * applies
        shift_y = uniform(-self.max_translate, self.max_translate) * 2 * applies
        sign = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0) if self.flip else (
            torch.ones(n, device=device))
        area = uniform(self.min_crop, 1.0)
        ratio = torch.exp(uniform(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])))
        if self.min_crop >= 1.0:
            ratio = torch.ones(n, device=device)
        crop_w = torch.sqrt(area * ratio).clamp(max=1.0)
        crop_h = torch.sqrt(area / ratio).clamp(max=1.0)
        centre_x = (torch.rand(n, device=device) * 2 - 1) * (1 - crop_w)
        centre_y = (torch.rand(n, device=device) * 2 - 1) * (1 - crop_h)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.zeros(n, 2, 3, device=device)
        # input = crop(translate(rotate_scale(flip(output))))
        theta[:, 0, 0] = crop_w * cos * sign
        theta[:, 0, 1] = -crop_w * sin
        theta[:, 0, 2] = crop_w * shift_x + centre_x
        theta[:, 1, 0] = crop_h * sin * sign
        theta[:, 1, 1] = crop_h * cos
        theta[:, 1, 2] = crop_h * shift_y + centre_y
        return theta

    def __call__(self, images: Tensor, masks: Tensor | None = None) -> Any:
        """Augment ``images``; with ``masks`` (N, H, W) of class codes, warp them the same way
        (nearest neighbour) and return ``(images, masks)``."""
        n = images.shape[0]
        theta = self.matrices(n, images.device).to(images.dtype)
        grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
        warped = torch.nn.functional.grid_sample(images, grid, mode="bilinear",
                                                 padding_mode="reflection", align_corners=False)
        if self.lighting:
            applies = (torch.rand(n, 1, 1, 1, device=images.device) < self.p_lighting).to(
                images.dtype)
            brightness = 1 + (torch.empty(n, 1, 1, 1, device=images.device).uniform_(
                -self.lighting, self.lighting) * applies).to(images.dtype)
            contrast = 1 + (torch.empty(n, 1, 1, 1, device=images.device).uniform_(
                -self.lighting, self.lighting) * applies).to(images.dtype)
            lit = warped * brightness
            grey_mean = lit.mean(dim=(1, 2, 3), keepdim=True)
            warped = ((lit - grey_mean) * contrast + grey_mean).clamp_(0, 1)
        if masks is None:
            return warped
        warped_masks = torch.nn.functional.grid_sample(
            masks[:, None].to(images.dtype), grid, mode="nearest", padding_mode="reflection",
            align_corners=False)[:, 0].round().to(masks.dtype)
        return warped, warped_masks


#: Largest side (pixels) that counts as a small image for :func:`default_augmentation`.
SMALL_IMAGE = 32


def default_augmentation(size: Sequence[int] | None = None, **options: Any) -> RandomBatchAugment:
    """Ember's default batch augmentation for images of ``size`` (see the module docstring);
    ``options`` are those of :class:`RandomBatchAugment` and override the defaults
    (``flip=False`` for digits or text, say). Small images (at most 32 pixels a side) get the
    light recipe; every other size, or an unknown one, the full recipe. The output keeps the
    input size.

    Example:
        >>> default_augmentation(flip=False).flip
        False
        >>> default_augmentation((28, 28)).max_rotate, default_augmentation((224, 224)).max_rotate
        (0.0, 10.0)
    """
    if size is not None and max(size) <= SMALL_IMAGE:
        light = {"max_rotate": 0.0, "scale": (1.0, 1.0), "min_crop": 1.0, "lighting": 0.0}
        options = {**light, **options}
    return RandomBatchAugment(**options)


class BatchAugment(ember.Callback):
    """Augment training batches on the training device.

    The batch arrives normalised; it is mapped back to [0, 1], augmented, and normalised again,
    so lighting changes see real pixel values. Validation batches are never touched.

    Args:
        transform: ``None`` for :func:`default_augmentation` (vectorised, per-image random);
            or any callable on float batches (N, C, H, W) in [0, 1]; or a
            torchvision.transforms.v2 transform, applied image by image (``per_item=True``,
            the default for v2 transforms) so each image gets its own random draw, or to the
            whole batch at once (``per_item=False``: one draw per batch, much faster).
        mean, std: normalisation statistics; taken from ``learn.data`` when not given.

    Example:
        >>> # learn = ember.learner(data, cbs=[BatchAugment(v2.RandomRotation(15))])
    """

    order = ember.Order.FIRST

    def __init__(self, transform: Callable[[Tensor], Tensor] | None = None,
                 per_item: bool | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        self.transform, self.mean, self.std = transform, mean, std
        self.per_item = isinstance(transform, v2.Transform) if per_item is None else per_item

    def before_fit(self) -> None:
        data = self.learn.data
        if self.mean is None or self.std is None:
            self.mean = getattr(data, "mean", None)
            self.std = getattr(data, "std", None)
        if self.mean is None or self.std is None:
            raise ember.TrainingError(
                "BatchAugment needs normalisation statistics: use it with ImageData, or pass "
                "mean= and std=")
        if self.transform is None:
            self.transform = default_augmentation(getattr(data, "size", None))

    def augment(self, images: Tensor) -> Tensor:
        """Augment one normalised batch (what :meth:`before_batch` does to training batches).

        Example:
            >>> # augmented = learn.callback("batch_augment").augment(xb)
        """
        assert self.mean is not None and self.std is not None and self.transform is not None
        with torch.no_grad():
            pixels = denormalize(images.float(), self.mean, self.std).clamp_(0, 1)
            if self.per_item:
                augmented = torch.stack([self.transform(image) for image in pixels])
            else:
                augmented = self.transform(pixels)
            return normalize_float(augmented, self.mean, self.std).to(images.dtype)

    def augment_with_masks(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Augment one normalised batch of images and their segmentation masks together, with
        the same random warp for an image and its mask (what :meth:`before_batch` does to
        segmentation batches, and ``SegmentationData.show_batch(augment=True)`` draws).

        Example:
            >>> # images, masks = learn.callback("batch_augment").augment_with_masks(xb, yb)
        """
        if not isinstance(self.transform, RandomBatchAugment):
            raise ember.TrainingError(
                "segmentation masks must move with their images: use the default "
                "RandomBatchAugment (or a subclass) for SegmentationData")
        assert self.mean is not None and self.std is not None
        with torch.no_grad():
            pixels = denormalize(images.float(), self.mean, self.std).clamp_(0, 1)
            pixels, masks = self.transform(pixels, masks)
            return normalize_float(pixels, self.mean, self.std), masks

    def before_batch(self) -> None:
        if not self.learn.training:
            return
        if getattr(self.learn.data, "kind", "") == "segmentation":
            images, self.learn.yb = self.augment_with_masks(self.learn.xb[0], self.learn.yb)
            self.learn.xb = (images, *self.learn.xb[1:])
            return
        self.learn.xb = (self.augment(self.learn.xb[0]), *self.learn.xb[1:])


def normalize_float(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Standardise a float batch in [0, 1] per channel (the float twin of :func:`normalize`).

    Example:
        >>> import torch
        >>> normalize_float(torch.ones(1, 1, 1, 1), [0.5], [0.5]).item()
        1.0
    """
    return (images - _per_channel(mean, images)) / _per_channel(std, images)


def _per_channel(values: Sequence[float], images: Tensor) -> Tensor:
    """``values`` shaped (1, C, 1, 1) with the dtype and device of ``images``."""
    return torch.tensor(values, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
