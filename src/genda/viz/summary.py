"""Architecture summaries (layer, output shape, params, totals) with torchinfo."""

from __future__ import annotations

from torch import nn


def summarize(net: nn.Module, input_size: tuple[int, ...], **kw) -> str:
    """torchsummary-style table of `net` for one input of `input_size` (run on CPU copy-free)."""
    from torchinfo import summary

    device = next(net.parameters()).device
    stats = summary(net, input_size=input_size, device=device, verbose=0, depth=3,
                    col_names=("output_size", "num_params"), row_settings=("var_names",), **kw)
    return str(stats)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())

