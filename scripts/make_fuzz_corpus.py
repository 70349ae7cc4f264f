#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets in tests/fuzz that have no fixture files to start from:

- corpus/image (fuzz_image): tiny images (12x9) in every format and mode the decoder handles (PNG RGB / gray /
  palette / RGBA, JPEG baseline / gray / CMYK / progressive, WebP lossy / lossless) and EXIF orientation in JPEG,
  PNG and WebP. Written with Pillow (Debian python3-pil).
- corpus/onnx (fuzz_onnx): tiny ONNX graphs (Conv + Relu + Add with float / int64 initializers, raw and typed
  data, attributes of every kind the interpreter reads, symbolic input dims). Written with Debian python3-onnx.

  /usr/bin/python3 scripts/make_fuzz_corpus.py [OUT]   (default tests/fuzz/corpus; writes OUT/image, OUT/onnx)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image


def images(out):
    os.makedirs(out, exist_ok=True)
    im = Image.new("RGB", (12, 9))
    for y in range(9):
        for x in range(12):
            im.putpixel((x, y), (x * 20, y * 25, (x * y) % 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW
    cases = [
        ("rgb.png", im, "PNG", {}), ("gray.png", im.convert("L"), "PNG", {}),
        ("palette.png", im.convert("P"), "PNG", {}), ("rgba.png", im.convert("RGBA"), "PNG", {}),
        ("exif6.png", im, "PNG", {"exif": exif.tobytes()}),
        ("rgb.jpg", im, "JPEG", {"quality": 80}), ("gray.jpg", im.convert("L"), "JPEG", {}),
        ("cmyk.jpg", im.convert("CMYK"), "JPEG", {}), ("progressive.jpg", im, "JPEG", {"progressive": True}),
        ("exif6.jpg", im, "JPEG", {"exif": exif.tobytes()}),
        ("rgb.webp", im, "WEBP", {"quality": 80}), ("lossless.webp", im, "WEBP", {"lossless": True}),
        ("exif6.webp", im, "WEBP", {"exif": exif.tobytes()}),
    ]
    for name, img, fmt, kw in cases:
        img.save(os.path.join(out, name), fmt, **kw)


def onnx_graphs(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = helper.make_tensor("b", TensorProto.FLOAT, [4], [0.1, -0.2, 0.3, 0.0])  # typed float_data
    shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "c"], ["a"], name="add"),
        helper.make_node("Reshape", ["a", "shape"], ["y"], name="reshape"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])
    g = helper.make_graph(nodes, "g", [x], [y], [w, b, shape])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), os.path.join(out, "conv.onnx"))
    # Attributes of the other kinds (float, string, tensor, ints/floats lists) on ops the interpreter knows.
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["l"], name="leaky", alpha=0.1),
        helper.make_node("Resize", ["l", "", "scales"], ["u"], name="resize", mode="nearest"),
        helper.make_node("Constant", [], ["k"], name="const",
                         value=helper.make_tensor("kv", TensorProto.FLOAT, [1], [2.0])),
        helper.make_node("Mul", ["u", "k"], ["y"], name="mul"),
    ]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])
    g = helper.make_graph(nodes, "g2", [x], [y], [scales])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]), os.path.join(out, "attrs.onnx"))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fuzz",
                                                               "corpus")
    images(os.path.join(out, "image"))
    onnx_graphs(os.path.join(out, "onnx"))


if __name__ == "__main__":
    main()
