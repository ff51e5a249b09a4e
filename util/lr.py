"""Layer-wise learning-rate decay groups and the per-iteration half-cosine schedule."""
import math


def layer_id(name, num_layers):
    """0 for the patch embedding and positions, i + 1 for block i, num_layers for the rest.

    As upstream, the CLS tokens, fusion conv and heads (all new in fine-tuning) take the
    top rate.
    """
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers


def param_groups_layer_decay(model, weight_decay, layer_decay, no_weight_decay=(), head_lr_scale=1.0,
                             heads=()):
    """AdamW groups: one per (layer, decay/no-decay, head or not); each carries an `lr_scale`.

    The groups depend on which parameters decay, not on the values of `weight_decay` and
    `layer_decay`, so that a run resumed with other values loads its optimizer state unchanged.

    The parameters of the modules named in `heads` (the linear read-outs) take `head_lr_scale`
    times the top rate: a from-scratch run's heads are linear models on the encoder's tokens, which
    AdamW at the encoder's rate fits far more slowly than the tokens allow (docs/demo.md section 4
    measures 10 on the demo: faster events, a noisier elevation).
    At 1 the heads share their layer's groups, as in checkpoints written before the option.
    """
    num_layers = len(model.blocks) + 1
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decays = not (param.ndim == 1 or name in no_weight_decay)
        layer = layer_id(name, num_layers)
        is_head = head_lr_scale != 1.0 and name.split(".")[0] in heads
        key = (layer, decays, is_head)
        if key not in groups:
            scale = layer_decay ** (num_layers - layer) * (head_lr_scale if is_head else 1.0)
            groups[key] = {"params": [], "weight_decay": weight_decay if decays else 0.0, "lr_scale": scale}
        groups[key]["params"].append(param)
    return list(groups.values())


def learning_rate(epoch, lr, min_lr, warmup_epochs, epochs):
    """Linear warm-up to `lr`, then half-cosine to `min_lr`; `epoch` is fractional."""
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    progress = (epoch - warmup_epochs) / max(epochs - warmup_epochs, 1e-8)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def set_learning_rate(optimizer, epoch, args):
    value = learning_rate(epoch, args.lr, args.min_lr, args.warmup_epochs, args.epochs)
    for group in optimizer.param_groups:
        group["lr"] = value * group.get("lr_scale", 1.0)
    return value
