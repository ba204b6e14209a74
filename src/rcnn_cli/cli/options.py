"""Options and parameter types that several commands share, each defined once.

Click checks what it can while parsing (:class:`RanksType`, :class:`IntListType`,
:class:`LabelledFolderType`, ``click.IntRange`` and ``click.FloatRange`` for ranges), so a bad value is a
one-line usage error naming the option before anything is loaded. What depends on other options or on
files is checked by the engine's configs when they are built. Nothing here imports torch: ``rcnn --help``
stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click

from rcnn_cli.errors import RcnnError
from rcnn_cli.models.specs import DEFAULT_BACKBONE, SPECS
from rcnn_cli.proposals.registry import ON_THE_FLY_METHODS, SELECTIVE_SEARCH_MODES, ProposalSettings

F = TypeVar("F", bound=Callable[..., Any])

#: Backbones by the Fast R-CNN paper's names (S, M, L), the torchvision layouts and our CPU nets, the
#: default first.
BACKBONES: tuple[str, ...] = (DEFAULT_BACKBONE, *(name for name in SPECS if name != DEFAULT_BACKBONE))


class IntListType(click.ParamType):
    """``600`` or ``480,576,688`` -> a tuple of ints, each >= ``minimum``; ``length`` fixes the count."""

    name = "INTS"

    def __init__(self, minimum: int = 1, length: int | None = None) -> None:
        self.minimum = minimum
        self.length = length

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            ints = tuple(int(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"expected comma-separated integers, got {value!r}", param, ctx)
        if self.length is not None and len(ints) != self.length:
            self.fail(f"expected {self.length} comma-separated integers, got {value!r}", param, ctx)
        if any(v < self.minimum for v in ints):
            self.fail(f"every value must be >= {self.minimum}, got {value!r}", param, ctx)
        return ints


class RenamedChoice(click.Choice):
    """A choice whose old names still work: each is taken as its new name, with a note on stderr.

    Only the current names are listed in ``--help``.
    """

    def __init__(self, choices: tuple[str, ...], renamed: dict[str, str]) -> None:
        super().__init__(choices)
        self.renamed = renamed

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        new = self.renamed.get(str(value))
        if new is not None:
            flag = param.opts[0] if param is not None and param.opts else "the option"
            click.echo(f"note: {flag} {value} is called {new} now; {value} will stop working", err=True)
            value = new
        return super().convert(value, param, ctx)


class DurationType(click.ParamType):
    """``90s``, ``12m``, ``1.5h`` -> seconds (:func:`rcnn_cli.training.budget.parse_duration`)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        from rcnn_cli.training.budget import parse_duration

        try:
            return parse_duration(str(value))
        except RcnnError as exc:
            self.fail(str(exc), param, ctx)


class LabelledFolder(NamedTuple):
    """A folder and the name it goes by in tables and plots."""

    label: str
    folder: Path


class LabelledFolderType(click.ParamType):
    """``LABEL=FOLDER`` or ``FOLDER`` (labelled by its own name) -> :class:`LabelledFolder`; the folder
    must exist. A value that is itself an existing folder is taken whole, even with a ``=`` in it."""

    name = "[LABEL=]FOLDER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, LabelledFolder):
            return value
        text = str(value)
        label, sep, folder = text.partition("=")
        if not sep or Path(text).is_dir():
            label, folder = "", text
        elif not label.strip():
            self.fail(f"{text!r}: the label before '=' is empty (expected LABEL=FOLDER)", param, ctx)
        elif not folder:
            self.fail(f"{text!r}: the folder after '=' is empty (expected LABEL=FOLDER)", param, ctx)
        path = Path(folder)
        if not path.is_dir():
            problem = "is not a folder" if path.exists() else "does not exist"
            self.fail(f"folder {folder!r} {problem}", param, ctx)
        return LabelledFolder(label.strip() or path.resolve().name or folder, path)


def distinct_labels(
    ctx: click.Context, param: click.Parameter, value: tuple[LabelledFolder, ...]
) -> tuple[LabelledFolder, ...]:
    """Callback of a repeated :class:`LabelledFolderType` option: every label names one folder."""
    seen: dict[str, Path] = {}
    for item in value:
        if seen.setdefault(item.label, item.folder) != item.folder:
            raise click.BadParameter(
                f"the label {item.label!r} names both {seen[item.label]} and {item.folder}; "
                "give them other labels with LABEL=FOLDER",
                ctx,
                param,
            )
    return value


class RanksType(click.ParamType):
    """``fc6=1024,fc7=256`` -> {"fc6": 1024, "fc7": 256}: truncated SVD rank t per fc layer (>= 1).

    Only the syntax is checked here; whether a layer exists and the rank fits its width is checked
    against the model (rcnn_cli.models.low_rank.check_rank).
    """

    name = "LAYER=RANK,..."
    layers = ("fc6", "fc7")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dict):
            return value
        try:
            return parse_ranks(str(value), self.layers)
        except RcnnError as exc:
            self.fail(str(exc), param, ctx)


def parse_ranks(text: str, layers: tuple[str, ...] = RanksType.layers) -> dict[str, int]:
    """``"fc6=1024,fc7=256"`` -> {layer: rank}; ``""``, ``none`` or ``full`` -> {} (no factorization)."""
    if text.strip() in ("", "none", "full"):
        return {}
    ranks: dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not value.isdigit():
            raise RcnnError(f"{item.strip()!r} is not LAYER=RANK (e.g. fc6=1024,fc7=256)")
        if name not in layers:
            raise RcnnError(f"unknown layer {name!r}; choose from {', '.join(layers)}")
        if int(value) < 1:
            raise RcnnError(f"the rank of {name} must be >= 1, got {value}")
        ranks[name] = int(value)
    return ranks


class RankSettingsType(click.ParamType):
    """``none;fc6=1024,fc7=256;fc6=512,fc7=128`` -> [{}, {...}, {...}]: the settings of an SVD sweep."""

    name = "SETTING;..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        try:
            return [parse_ranks(item) for item in str(value).split(";")]
        except RcnnError as exc:
            self.fail(str(exc), param, ctx)


def svd_rank_options(func: F) -> F:
    """``--svd-rank T`` (every fc layer) and ``--svd-ranks fc6=T6,fc7=T7`` (per layer, wins)."""
    func = click.option(
        "--svd-ranks",
        type=RanksType(),
        default=None,
        help="Per-layer truncated SVD ranks, e.g. fc6=1024,fc7=256.",
    )(func)
    return click.option(
        "--svd-rank",
        type=click.IntRange(min=1),
        default=None,
        help="Truncated SVD of every fc layer at this rank t.",
    )(func)


def merge_ranks(svd_rank: int | None, svd_ranks: dict[str, int] | None) -> dict[str, int]:
    """The ranks that ``--svd-rank`` and ``--svd-ranks`` ask for together (per-layer values win)."""
    ranks = dict.fromkeys(RanksType.layers, svd_rank) if svd_rank is not None else {}
    return {**ranks, **(svd_ranks or {})}


def max_pixels_option(func: F) -> F:
    """``--max-pixels N``: the decoding safety limit of every command that reads images (the one
    their "image too large" errors tell the user to raise)."""
    from rcnn_cli.limits import DEFAULT_MAX_PIXELS

    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse images with more pixels than this (each decoded image takes 3 bytes a pixel).",
    )(func)


def image_root_option(func: F) -> F:
    """``--image-root FOLDER``: where a COCO JSON's ``file_name`` paths start, for every command that
    reads a dataset (passed to :func:`rcnn_cli.data.open_dataset`)."""
    return click.option(
        "--image-root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="COCO JSON: the folder its file_name paths start from [default: the JSON's info.image_root, "
        "else its own folder].",
    )(func)


def on_error_option(help: str) -> Callable[[F], F]:
    """``--on-error skip|stop``: what a bad image or annotation does to the run."""
    return click.option(
        "--on-error", type=click.Choice(["skip", "stop"]), default="skip", show_default=True, help=help
    )


def backbone_option(func: F) -> F:
    return click.option(
        "--backbone",
        type=click.Choice(BACKBONES),
        default=DEFAULT_BACKBONE,
        show_default=True,
        help="small_context, small: CPU nets trained from scratch (small_context: small with a wider "
        "receptive field, the default); caffenet, vgg_cnn_m_1024, vgg16: the paper's S, M, L; resnet18, "
        "resnet50, mobilenet_v3_large: for torchvision ImageNet weights (--weights).",
    )(func)


def mode_option(flag: str) -> Callable[[F], F]:
    """Selective Search's mode under the name ``flag`` (``--mode`` of propose, ``--proposal-mode``)."""
    return click.option(
        flag,
        type=click.Choice(SELECTIVE_SEARCH_MODES),
        default="fast",
        show_default=True,
        help="Selective Search strategies: 1, 12 or 80 (colour spaces x k x similarity sets).",
    )


def proposal_options(images: str) -> Callable[[F], F]:
    """``--proposals FOLDER`` or ``--proposal-method METHOD`` [``--proposal-mode``], for ``images``."""

    def decorate(func: F) -> F:
        func = mode_option("--proposal-mode")(func)
        func = click.option(
            "--proposal-method",
            type=click.Choice(ON_THE_FLY_METHODS),
            default=None,
            help=f"Compute proposals for {images} on the fly instead of --proposals.",
        )(func)
        return click.option(
            "--proposals",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help=f"Proposals folder made by 'rcnn propose' for {images}.",
        )(func)

    return decorate


def proposal_source(
    proposals: Path | None,
    method: str | None,
    mode: str = "fast",
    max_proposals: int = 2000,
    images: str = "the images",
) -> Any:
    """The :data:`rcnn_cli.proposals.sources.ProposalSource` that :func:`proposal_options` chose."""
    from rcnn_cli.proposals.sources import folder_source, method_source

    if (proposals is None) == (method is None):
        raise RcnnError(f"give --proposals FOLDER or --proposal-method METHOD (one of them) for {images}")
    if proposals is not None:
        return folder_source(proposals)
    assert method is not None
    return method_source(ProposalSettings(method=method, mode=mode, max_proposals=max_proposals))


def distill_options(images_help: str) -> Callable[[F], F]:
    """``--distill-images`` and ``--distill-steps`` with :class:`DistillConfig`'s defaults."""
    from rcnn_cli.inference.distill.config import DistillConfig

    defaults = DistillConfig()

    def decorate(func: F) -> F:
        func = click.option(
            "--distill-steps",
            type=click.IntRange(min=1),
            default=defaults.steps,
            show_default=True,
            help="Distillation steps.",
        )(func)
        return click.option(
            "--distill-images",
            type=click.IntRange(min=1),
            default=defaults.images,
            show_default=True,
            help=images_help,
        )(func)

    return decorate
