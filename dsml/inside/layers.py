"""Finding a layer of a network by its dotted name (``"net.2"``) or by the module itself."""

from __future__ import annotations

from torch import nn

MAX_NAMES_LISTED = 40


def _layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def find_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """The ``(dotted name, module)`` for ``layer``, a name like ``"net.2"`` or a submodule of ``model``."""
    if isinstance(layer, nn.Module):
        for name, module in model.named_modules():
            if module is layer:
                return name or "(model)", module
        raise ValueError(
            f"the {type(layer).__name__} passed as layer is not part of this "
            f"{type(model).__name__}. Pass one of its layers, e.g. model.net[2], or a name."
        )
    if not isinstance(layer, str):
        raise TypeError(f"layer should be a dotted module name like 'net.2' or a module. Got {type(layer).__name__}.")
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        names = _layer_names(model)
        shown = ", ".join(repr(n) for n in names[:MAX_NAMES_LISTED])
        more = f" (and {len(names) - MAX_NAMES_LISTED} more)" if len(names) > MAX_NAMES_LISTED else ""
        raise ValueError(f"this {type(model).__name__} has no layer {layer!r}. Its layers are: {shown}{more}.")
    return layer, modules[layer]


def first_linear(model: nn.Module, layer: str | nn.Module | None = None) -> tuple[str, nn.Linear]:
    """The named ``nn.Linear`` layer, or the model's first one."""
    if layer is None:
        for name, m in model.named_modules():
            if isinstance(m, nn.Linear):
                return name or "(model)", m
        raise ValueError(f"this {type(model).__name__} has no nn.Linear layer, so it has no dense hidden units.")
    name, m = find_layer(model, layer)
    if not isinstance(m, nn.Linear):
        raise TypeError(f"layer {name!r} is a {type(m).__name__}; hidden-unit pictures need an nn.Linear layer.")
    return name, m
