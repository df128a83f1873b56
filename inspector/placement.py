"""Placement: which whole blocks (embeddings, each layer with its KV cache, the head) go on which device.

The rule is what `device_map="auto"` (accelerate's infer_auto_device_map) does with a model's
no-split modules: blocks are taken in model order and filled onto devices in order, a block never splits
across devices, a device once left is not returned to, and the first device keeps room for the largest block
still to come (its weights: accelerate's `max_layer_size` on its main device). Each device's capacity is what is
left for blocks after its runtime overhead (`capacity`, with bitsandbytes' share of max_memory).

A later planner adds devices rather than rules: CPU offload is a RAM `Device` after the GPUs, tensor
parallelism divides each block over a group of devices before it is placed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .names import layer_of
from .results import Fit, Gpu, Verdict, frozen


@frozen
class Block:
    """A piece that must sit whole on one device."""

    name: str  # "embeddings" (what precedes the layers, buffers included) | "layer N" | "head" (what follows)
    bytes: int


@frozen
class Device:
    name: str  # e.g. "H100-80GB:0"
    capacity_bytes: int  # what blocks may use (memory less the runtime overhead)


@frozen
class DeviceLoad:
    device: str
    bytes: int
    blocks: tuple[str, ...]


@frozen
class Placement:
    loads: tuple[DeviceLoad, ...]  # the devices that got blocks, in order
    unplaced: tuple[str, ...]  # blocks no remaining device had room for (and every block after them)

    @property
    def complete(self) -> bool:
        return not self.unplaced


def blocks(
    sizes: Mapping[str, int], order: Sequence[str], kv_per_layer: Sequence[int], extra_first: int = 0
) -> list[Block]:
    """Whole pieces a device map places: what precedes the layers (+ `extra_first`, the buffers), each layer
    with its KV cache, what follows. Zero-byte pieces are left out."""
    layers: dict[int, int] = {}
    before = after = 0
    seen_layer = False
    for name in order:
        layer = layer_of(name)
        if layer is None:
            if seen_layer:
                after += sizes[name]
            else:
                before += sizes[name]
        else:
            seen_layer = True
            layers[layer] = layers.get(layer, 0) + sizes[name]
    for i, kv in enumerate(kv_per_layer):
        layers[i] = layers.get(i, 0) + kv
    pieces = [Block("embeddings", before + extra_first), *(Block(f"layer {k}", layers[k]) for k in sorted(layers))]
    return [b for b in [*pieces, Block("head", after)] if b.bytes]


def place(pieces: Sequence[Block], devices: Sequence[Device], weights: Sequence[Block] | None = None) -> Placement:
    """Fill `devices` in order with whole blocks in order, as device_map="auto" does. With `weights` (the blocks
    without their KV cache), the first device keeps room for the largest still to come, as accelerate keeps it on
    its main device (infer_auto_device_map's `max_layer_size`; plan.offloaded_placement, the same rule)."""
    loads: list[DeviceLoad] = []
    current: list[str] = []
    used = 0
    index = 0
    bare = {b.name: b.bytes for b in weights or ()}
    after = [0] * (len(pieces) + 1)  # after[i]: the largest weights of pieces[i:]
    for i in range(len(pieces) - 1, -1, -1):
        after[i] = max(after[i + 1], bare.get(pieces[i].name, 0))
    for position, block in enumerate(pieces):
        while index < len(devices) and used + block.bytes > devices[index].capacity_bytes - (
            after[position + 1] if index == 0 else 0
        ):
            if current:
                loads.append(DeviceLoad(devices[index].name, used, tuple(current)))
            index, used, current = index + 1, 0, []
        if index == len(devices):
            return Placement(tuple(loads), tuple(b.name for b in pieces[position:]))
        current.append(block.name)
        used += block.bytes
    if current:
        loads.append(DeviceLoad(devices[index].name, used, tuple(current)))
    return Placement(tuple(loads), ())


def capacity(gpu: Gpu, overhead_per_gpu: int, fraction: float = 1.0) -> int:
    """What one GPU of `gpu` offers blocks (the one rule the report, `check` and `plan` share): its memory (a local
    GPU: what is free right now) less the overhead, x `fraction`, the share the loader leaves to the weights
    (schemes.Scheme.max_memory_fraction: bitsandbytes keeps 10% of max_memory)."""
    free = gpu.free_bytes if gpu.free_bytes is not None else gpu.usable_bytes
    return int((free - overhead_per_gpu) * fraction)


def gpu_devices(gpu: Gpu, overhead_per_gpu: int, count: int | None = None, fraction: float = 1.0) -> list[Device]:
    """`count` (default: gpu.count) devices, each with its room (`capacity`): a mixed setup's own devices in their
    order (device_map="auto" fills device 0, then 1, ... with each one's max_memory), past them more of the
    setup's smallest size; a setup of equal GPUs, `count` of its size."""
    members = gpu.devices or ()
    rooms = [capacity(member, overhead_per_gpu, fraction) for member in members]
    room = capacity(gpu, overhead_per_gpu, fraction)
    total = gpu.count if count is None else count
    return [Device(f"{gpu.name}:{i}", rooms[i] if i < len(rooms) else room) for i in range(total)]


def fit(
    pieces: Sequence[Block],
    gpu: Gpu,
    overhead_per_gpu: int,
    fraction: float = 1.0,
    weights: Sequence[Block] | None = None,
) -> Fit:
    """The verdict on `gpu`: how many devices of its size the blocks spread over, against how many there are
    (`weights`: the blocks without their KV cache, for the room the first device keeps; see `place`)."""
    label = gpu.label
    # as many devices as blocks: enough for any placement, so the count used is the count needed
    devices = gpu_devices(gpu, overhead_per_gpu, max(gpu.count, len(pieces)), fraction)
    own = devices[: gpu.count]
    largest = max(d.capacity_bytes for d in own)
    if largest <= 0 or any(b.bytes > largest for b in pieces):
        return Fit(gpu=label, verdict=Verdict.DOES_NOT_FIT, gpus_needed=None, headroom_bytes=None)
    placement = place(pieces, devices, weights)
    if placement.unplaced:  # a block larger than the smaller devices left after the large ones are full
        return Fit(gpu=label, verdict=Verdict.DOES_NOT_FIT, gpus_needed=None, headroom_bytes=None)
    # the devices up to the last one used (a small one passed over empty still comes before it)
    names = [d.name for d in devices]
    needed = names.index(placement.loads[-1].device) + 1 if placement.loads else 1
    headroom = sum(d.capacity_bytes for d in own) - sum(b.bytes for b in pieces)
    return Fit(gpu=label, verdict=Verdict.FITS if needed <= gpu.count else Verdict.NEEDS_MORE, gpus_needed=needed,
               headroom_bytes=headroom)  # fmt: skip
