"""Parameter counts per component, for printing a model (issue 5: compare with the official)."""
from __future__ import annotations

from torch import nn


def count(module: nn.Module | nn.Parameter) -> int:
    if isinstance(module, nn.Parameter):
        return module.numel()
    return sum(p.numel() for p in module.parameters())


def param_table(model: nn.Module, expand: tuple[str, ...] = ()) -> dict[str, int]:
    """{component: parameters} over the model's direct children and parameters; children named
    in ``expand`` are listed one level deeper (``visual.backbone``, ``visual.conv`` ...)."""
    out = {}
    for name, child in model.named_children():
        if name in expand:
            for sub, grandchild in child.named_children():
                out[f"{name}.{sub}"] = count(grandchild)
            own = sum(p.numel() for p in child.parameters(recurse=False))
            if own:
                out[f"{name}.*"] = own
        else:
            out[name] = count(child)
    for name, p in model.named_parameters(recurse=False):
        out[name] = p.numel()
    out = {k: v for k, v in out.items() if v}
    out["total"] = count(model)
    return out


def format_table(title: str, table: dict[str, int]) -> str:
    width = max(len(k) for k in table)
    lines = [f"{title}: {table['total']:,} parameters"]
    lines += [f"  {k:<{width}}  {v:>13,}" for k, v in table.items() if k != "total"]
    return "\n".join(lines)
