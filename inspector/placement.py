"""Placement: which whole blocks (embeddings, each layer with its KV cache, the head) go on which device.

The rule is what `device_map="auto"` (accelerate's infer_auto_device_map) does with a model's
no-split modules: blocks are taken in model order and filled onto devices in order, a block never splits
across devices, and a device once left is not returned to. Each device's capacity is what is left for
blocks after its runtime overhead.

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


def place(pieces: Sequence[Block], devices: Sequence[Device]) -> Placement:
    """Fill `devices` in order with whole blocks in order, as device_map="auto" does."""
    loads: list[DeviceLoad] = []
    current: list[str] = []
    used = 0
    index = 0
    for position, block in enumerate(pieces):
        while index < len(devices) and used + block.bytes > devices[index].capacity_bytes:
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


def devices_used(sizes: Sequence[int], capacity: int) -> int:
    """How many devices `place` fills with blocks of `sizes` bytes given as many devices of `capacity` as it needs
    (each block at most `capacity`): its rule counted, without building the devices and loads (memory and plan
    ask it for every scheme, GPU and context tried)."""
    used, current, filled = 0, False, 0
    for size in sizes:
        if current and used + size > capacity:  # to the next device, as place() moves on
            filled, used, current = filled + 1, 0, False
        used += size
        current = True
    return filled + current


def _capacity(gpu: Gpu, overhead_per_gpu: int) -> int:
    """What one device of `gpu` offers blocks; a local GPU offers what is free right now."""
    return (gpu.free_bytes if gpu.free_bytes is not None else gpu.usable_bytes) - overhead_per_gpu


def gpu_devices(gpu: Gpu, overhead_per_gpu: int, count: int | None = None) -> list[Device]:
    """`count` (default: gpu.count) devices of `gpu`'s size; a local GPU offers what is free right now."""
    capacity = _capacity(gpu, overhead_per_gpu)
    return [Device(f"{gpu.name}:{i}", capacity) for i in range(gpu.count if count is None else count)]


def fit(pieces: Sequence[Block], gpu: Gpu, overhead_per_gpu: int) -> Fit:
    """The verdict on `gpu`: how many devices of its size the blocks spread over, against how many there are."""
    return fit_sizes([b.bytes for b in pieces], gpu, overhead_per_gpu)


def fit_sizes(sizes: Sequence[int], gpu: Gpu, overhead_per_gpu: int) -> Fit:
    """`fit` of blocks given by their bytes, in order (plan's longest-context search asks it many times)."""
    label = gpu.label
    capacity = _capacity(gpu, overhead_per_gpu)
    if capacity <= 0 or any(size > capacity for size in sizes):
        return Fit(gpu=label, verdict=Verdict.DOES_NOT_FIT, gpus_needed=None, headroom_bytes=None)
    needed = max(1, devices_used(sizes, capacity))
    headroom = gpu.count * capacity - sum(sizes)
    return Fit(gpu=label, verdict=Verdict.FITS if needed <= gpu.count else Verdict.NEEDS_MORE, gpus_needed=needed,
               headroom_bytes=headroom)  # fmt: skip
