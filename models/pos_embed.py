"""Fixed 2-D sine-cosine position table in the AudioMAE layout.

Tokens are ordered time-major (token = row * n_cols + col, rows = time patches,
columns = frequency patches). The first half of the channels encodes the column
(frequency) index and the second half the row (time) index; within each half the
first quarter is sin and the second cos. This is the layout of AudioMAE's
`get_2d_sincos_pos_embed_flexible`, so AudioMAE and Spatial-AST checkpoints agree
with a freshly initialised model.
"""
import torch


def sincos_1d(dim, positions):
    """[len(positions), dim] table: sin of positions * omega, then cos."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(dim, grid_size, num_prefix_tokens=1):
    """Table of shape [1, num_prefix_tokens + rows * cols, dim]; prefix rows are zero."""
    rows, cols = grid_size
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a dimension divisible by 4, got {dim}")
    row_index = torch.arange(rows).repeat_interleave(cols)
    col_index = torch.arange(cols).repeat(rows)
    table = torch.cat([sincos_1d(dim // 2, col_index), sincos_1d(dim // 2, row_index)], dim=1)
    table = torch.cat([torch.zeros(num_prefix_tokens, dim, dtype=table.dtype), table])
    return table.float().unsqueeze(0)
