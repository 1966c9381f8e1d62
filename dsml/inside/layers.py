"""Finding the layer a picture is about: by dotted name, by module, or the first/last of a kind."""

from __future__ import annotations

from torch import nn

from dsml._checks import listing
from dsml.errors import DsmlTypeError, DsmlValueError

MAX_NAMES_LISTED = 40


def _listed(names: list[str]) -> str:
    return listing(names, MAX_NAMES_LISTED, repr)


def find_module(
    model: nn.Module,
    layer: str | nn.Module | None,
    kinds: tuple[type[nn.Module], ...] = (nn.Module,),
    *,
    default: str = "first",
    what: str = "layer",
) -> tuple[str, nn.Module]:
    """The ``(dotted name, module)`` that ``layer`` names, checking it is one of ``kinds``.

    Args:
        model: the network.
        layer: a dotted name like ``"features.0"`` (see ``DSTorch.summary``), one
            of ``model``'s submodules, or ``None`` for the first (or last, with
            ``default="last"``) module of ``kinds``.
        kinds: the module types that make sense for the caller, e.g. ``(nn.Conv2d,)``.
        what: how the caller's message names the layer (``"a convolution layer"``).

    Example:
        >>> find_module(SimpleCNN(), None, (nn.Conv2d,), default="last")[0]
        'features.3'
    """
    if not isinstance(model, nn.Module):
        raise DsmlTypeError(f"model should be a torch nn.Module. Got {type(model).__name__}.")
    kind_names = " or ".join(k.__name__ for k in kinds)
    if layer is None:
        found = [(name, m) for name, m in model.named_modules() if name and isinstance(m, kinds)]
        if not found:
            raise DsmlValueError(f"this {type(model).__name__} has no {kind_names} layer, so it has no {what}.")
        return found[0] if default == "first" else found[-1]
    if isinstance(layer, nn.Module):
        name = next((n for n, m in model.named_modules() if m is layer), None)
        if name is None:
            raise DsmlValueError(
                f"the {type(layer).__name__} passed as layer is not part of this {type(model).__name__}. "
                "Pass one of its layers (e.g. model.features[0]) or a dotted name."
            )
        module = layer
    elif isinstance(layer, str):
        modules = dict(model.named_modules())
        if not layer or layer not in modules:
            names = [n for n in modules if n]
            raise DsmlValueError(
                f"this {type(model).__name__} has no layer {layer!r}. Its layers are: {_listed(names)}."
            )
        name, module = layer, modules[layer]
    else:
        raise DsmlTypeError(f"layer should be a dotted name like 'features.0' or a module. Got {type(layer).__name__}.")
    if not isinstance(module, kinds):
        fitting = [n for n, m in model.named_modules() if n and isinstance(m, kinds)]
        raise DsmlTypeError(
            f"layer {name!r} is a {type(module).__name__}, but {what} needs a {kind_names}. "
            f"This model's {kind_names} layers: {_listed(fitting) or 'none'}."
        )
    return name or "(model)", module


def find_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """The ``(dotted name, module)`` for ``layer``, a name like ``"net.2"`` or a submodule of ``model``."""
    if layer is None:
        raise DsmlTypeError("layer should be a dotted module name like 'net.2' or a module. Got None.")
    return find_module(model, layer)


def first_linear(model: nn.Module, layer: str | nn.Module | None = None) -> tuple[str, nn.Linear]:
    """The named ``nn.Linear`` layer, or the model's first one (for pictures of dense hidden units)."""
    return find_module(model, layer, (nn.Linear,), what="dense hidden units")
