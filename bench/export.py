"""An exported model beside its checkpoint on real images: onnxruntime's time per image against torch's
(the same network, interleaved image by image in one process), and how close their outputs are.

For a Fast R-CNN model give the images' proposals (``--proposals``, a proposals folder); a Faster
R-CNN proposes itself. Time is the network alone (the image read and resized once, outside the timer):

    OMP_NUM_THREADS=1 python bench/export.py runs/faster/model.pt --voc ../shared/data/bccd --split test
    OMP_NUM_THREADS=1 python bench/export.py runs/bccd/model.pt --voc ../shared/data/bccd --split test \\
        --proposals props/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from rcnn_cli.data import open_dataset
    from rcnn_cli.data.images import read_image
    from rcnn_cli.inference.export import export_model, network_for, network_inputs
    from rcnn_cli.inference.export.agreement import agreement
    from rcnn_cli.inference.export.network import as_tensors
    from rcnn_cli.models import load_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--voc", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--proposals", type=Path, help="proposals folder (Fast R-CNN models)")
    parser.add_argument("--limit", type=int, default=20, help="images")
    parser.add_argument("--max-proposals", type=int, default=2000)
    args = parser.parse_args()
    import onnxruntime

    model, meta = load_checkpoint(args.model)
    network = network_for(model)
    records = open_dataset(args.voc, split=args.split).records[: args.limit]
    store = None
    if "proposals" in network.input_names:
        if args.proposals is None:
            raise SystemExit(f"{args.model} is a Fast R-CNN model: give --proposals")
        from rcnn_cli.training.proposals_io import load_proposals

        store = load_proposals(args.proposals, records, args.max_proposals)
        records = [r for r in records if r.image_id in store]

    with tempfile.TemporaryDirectory() as tmp:
        result = export_model(args.model, Path(tmp) / "model.onnx", "onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(str(result.path), options, providers=["CPUExecutionProvider"])
        times = {"torch": 0.0, "onnxruntime": 0.0}
        worst = None
        for record in records:
            rgb = read_image(record.path)
            boxes = np.zeros((0, 4), np.float32)
            if store is not None:
                boxes = store[record.image_id].numpy().astype(np.float32)
            inputs = network_inputs(rgb, boxes, meta["config"])
            feed = {name: inputs[name] for name in network.input_names}
            start = time.perf_counter()
            with torch.no_grad():
                want = [t.numpy() for t in network(*as_tensors(inputs, network.input_names))]
            times["torch"] += time.perf_counter() - start
            start = time.perf_counter()
            got = session.run(list(network.output_names), feed)
            times["onnxruntime"] += time.perf_counter() - start
            close = agreement(
                dict(zip(network.output_names, got, strict=True)),
                dict(zip(network.output_names, want, strict=True)),
                0.01,
            )
            if worst is None or (close.shared, -close.box_error) < (worst.shared, -worst.box_error):
                worst = close
    count = len(records)
    print(f"{args.model} ({type(network).__name__}), {count} images, {torch.get_num_threads()} thread(s)")
    for name, seconds in times.items():
        print(f"  {name:12s} {1000 * seconds / count:8.1f} ms/image")
    print(f"  onnxruntime / torch time: {times['onnxruntime'] / times['torch']:.2f}")
    print(
        f"  worst image: {worst.shared:.1%} of the proposals shared, max |Δ| {worst.score_error:.1e} in "
        f"scores, {worst.box_error:.1e} px in boxes, a proposal moved by at most {worst.moved} places"
    )


if __name__ == "__main__":
    main()
