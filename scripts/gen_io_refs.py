#!/usr/bin/python3
"""Reference data for the io tests (tests/fixtures/io/), computed independently of arc2face.cpp.

* refs.json: for named tensors of the model fixtures (encoder .bin loaded with torch.load; the safetensors files
  parsed here with json + numpy, not with our code), dtype, shape, float64 sum, first/last values; small .npy
  slices of a few of them.
* torch_features.pt / torch_features_p4.pt / torch_wrapped.ckpt: small torch.save checkpoints with the features a
  loader must handle (shared and offset storages, non-contiguous and expanded views, every dtype, Parameter,
  nested containers, 0-d and empty tensors, a {"state_dict": ...} wrapper, pickle protocol 4); their exact
  values go into refs.json.
* npy/*.npy: numpy-written arrays (format versions 1, 2, 3; several dtypes).
* bad/*: malicious or malformed files that must be refused with a clear error (pickles that call os.system /
  builtins.eval — written here, never loaded by anyone; truncated and lying archives; lying safetensors headers;
  bad .npy headers).

Run: /usr/bin/python3 scripts/gen_io_refs.py  (torch 1.13, numpy). Deterministic.
"""
import collections
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "io")
BAD = os.path.join(OUT, "bad")
NPY = os.path.join(OUT, "npy")

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
             "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}


def read_safetensors(path):
    """Independent safetensors reader: {name: (dtype_name, np.ndarray)}, metadata."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        if e["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32).reshape(e["shape"])
        else:
            arr = np.frombuffer(raw, dtype=ST_DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = (e["dtype"], arr)
    return out, meta


TORCH_DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.int8: "I8", torch.bool: "BOOL"}


def to_numpy(t):
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy(), "BF16"
    return t.numpy(), TORCH_DT[t.dtype]


def describe(name, dtype, arr, full=False):
    flat = np.ascontiguousarray(arr).reshape(-1)
    vals = flat.astype(np.float64)
    d = {"name": name, "dtype": dtype, "shape": list(arr.shape), "numel": int(flat.size),
         "sum": float(vals.sum()) if flat.size else 0.0}
    if full:
        d["values"] = [float(v) for v in vals]
    else:
        d["first"] = [float(v) for v in vals[:8]]
        d["last"] = float(vals[-1]) if flat.size else None
    return d


def file_summary(tensors):
    return {"count": len(tensors), "params": int(sum(a.size for _, a in tensors.values())),
            "bytes": int(sum(a.size * {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4,
                                       "U8": 1, "I8": 1, "BOOL": 1}[dt] for dt, a in tensors.values()))}


def model_refs(refs):
    picks = {
        "models/encoder/pytorch_model.bin": [
            "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
            "text_model.encoder.layers.0.self_attn.k_proj.weight", "text_model.final_layer_norm.bias"],
        "models/arc2face/diffusion_pytorch_model.safetensors": [
            "conv_in.weight", "conv_in.bias", "time_embedding.linear_1.weight",
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"],
        "models/sd15/vae/diffusion_pytorch_model.safetensors": [
            "decoder.conv_in.weight", "encoder.mid_block.attentions.0.query.weight"],
        "models/controlnet/diffusion_pytorch_model.safetensors": [
            "controlnet_cond_embedding.blocks.0.weight", "controlnet_mid_block.weight"],
        "models/lcm-lora/pytorch_lora_weights.safetensors": [
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
            "lora_unet_down_blocks_0_attentions_0_proj_in.alpha"],
    }
    slices = {}
    for rel, names in picks.items():
        path = os.path.join(FIX, rel)
        if rel.endswith(".bin"):
            sd = torch.load(path, map_location="cpu")
            tensors = {k: to_numpy(v)[::-1] for k, v in sd.items()}
            meta = {}
        else:
            tensors, meta = read_safetensors(path)
        entry = {"metadata": meta, **file_summary(tensors), "tensors": []}
        for name in names:
            dt, arr = tensors[name]
            entry["tensors"].append(describe(name, dt, arr))
        refs["files"][rel] = entry
        # One small slice per file: the first two rows (flattened trailing dims) of its first pick.
        dt, arr = tensors[names[0]]
        sl = np.ascontiguousarray(arr.reshape(arr.shape[0], -1)[:2, :16]).astype(np.float32)
        fname = "slice_" + rel.split("/")[1] + ".npy"
        np.save(os.path.join(OUT, fname), sl)
        slices[fname] = {"file": rel, "tensor": names[0], "what": "reshape(shape[0], -1)[:2, :16] as float32"}
    refs["slices"] = slices


def feature_checkpoints(refs):
    g = torch.Generator().manual_seed(1234)
    w = torch.randn(3, 4, generator=g)
    big = torch.arange(10, dtype=torch.float32) * 0.5
    sd = collections.OrderedDict()
    sd["w"] = w
    sd["wt"] = w.t()  # non-contiguous view of w's storage
    sd["slice"] = big[2:5]  # storage offset 2 into a storage of 10
    sd["big"] = big
    sd["half"] = torch.randn(5, generator=g).half()
    sd["bf"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, generator=g).double()
    sd["long"] = torch.tensor([1, -2, 3, 1 << 40])
    sd["i32"] = torch.tensor([7, -8], dtype=torch.int32)
    sd["i8"] = torch.tensor([-3, 4], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
    sd["flag"] = torch.tensor([True, False, True])
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)  # stride (0, 1)
    sd["nested"] = {"a": torch.tensor([0.5, -0.5]), "b": [torch.tensor([1.5]), torch.tensor([2.5, 3.5])]}
    sd["step"] = 5  # not a tensor: skipped
    sd["note"] = "hello"
    torch.save(sd, os.path.join(OUT, "torch_features.pt"))
    torch.save(sd, os.path.join(OUT, "torch_features_p4.pt"), pickle_protocol=4)
    expect = []

    def add(name, t):
        arr, dt = to_numpy(t)
        expect.append(describe(name, dt, arr, full=True))
    for k, v in sd.items():
        if k == "nested":
            add("nested.a", v["a"])
            add("nested.b.0", v["b"][0])
            add("nested.b.1", v["b"][1])
        elif isinstance(v, torch.Tensor):
            add(k, v)
    refs["torch_features"] = expect

    wrapped = {"state_dict": collections.OrderedDict([("model.x", torch.tensor([1.0, 2.0])),
                                                      ("model.y", torch.tensor([[3.0], [4.0]]))]),
               "global_step": 10, "epoch": 1, "callbacks": {"best": 0.5}}
    torch.save(wrapped, os.path.join(OUT, "torch_wrapped.ckpt"))
    refs["torch_wrapped"] = [describe("model.x", "F32", wrapped["state_dict"]["model.x"].numpy(), True),
                             describe("model.y", "F32", wrapped["state_dict"]["model.y"].numpy(), True)]


def write_st(path, header_obj, data, header_len=None):
    h = json.dumps(header_obj).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if header_len is None else header_len
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", n) + h + data)


def safetensors_good(refs):
    # Every dtype, metadata, an empty tensor and a 0-d tensor; written by hand (the format is simple).
    arrs = collections.OrderedDict()
    arrs["a_f32"] = ("F32", np.array([[1.5, -2.0], [3.25, 4.0]], dtype=np.float32))
    arrs["b_f16"] = ("F16", np.array([0.5, -1.0, 65504.0], dtype=np.float16))
    arrs["c_bf16"] = ("BF16", np.array([0x3f80, 0xc000, 0x4049], dtype=np.uint16))  # 1, -2, 3.140625
    arrs["d_f64"] = ("F64", np.array([1e-300, 2.5], dtype=np.float64))
    arrs["e_i64"] = ("I64", np.array([-(1 << 50), 7], dtype=np.int64))
    arrs["f_i32"] = ("I32", np.array([-5], dtype=np.int32))
    arrs["g_u8"] = ("U8", np.array([0, 200], dtype=np.uint8))
    arrs["h_i8"] = ("I8", np.array([-128, 127], dtype=np.int8))
    arrs["i_bool"] = ("BOOL", np.array([True, False], dtype=np.bool_))
    arrs["j_empty"] = ("F32", np.zeros((0, 4), dtype=np.float32))
    arrs["k_scalar"] = ("F32", np.array(7.0, dtype=np.float32))
    header, data, off = {"__metadata__": {"format": "pt", "note": "io test"}}, b"", 0
    for name, (dt, a) in arrs.items():
        raw = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    write_st(os.path.join(OUT, "all_dtypes.safetensors"), header, data)
    expect = []
    for name, (dt, a) in arrs.items():
        v = a
        if dt == "BF16":
            v = (a.astype(np.uint32) << 16).view(np.float32)
        expect.append(describe(name, dt, v, full=True))
    refs["all_dtypes"] = {"metadata": header["__metadata__"], "tensors": expect}


def _zinfo(name):
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed time: reproducible files


def zip_rewrite(src, dst, compress=zipfile.ZIP_STORED, drop=None, replace=None):
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", compression=compress) as zo:
        for info in zi.infolist():
            if drop and info.filename.endswith(drop):
                continue
            data = zi.read(info.filename)
            if replace and info.filename.endswith(replace[0]):
                data = replace[1]
            zo.writestr(_zinfo(info.filename), data, compress_type=compress)


class _Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def pickle_zip(path, payload):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(_zinfo("archive/data.pkl"), payload)
        z.writestr(_zinfo("archive/version"), "3\n")


def bad_files(bad):
    small = os.path.join(BAD, "_small.pt")
    torch.save({"x": torch.arange(64, dtype=torch.float32)}, small)
    ok = open(small, "rb").read()

    # Pickles that would run code in Python. We write them; nobody loads them.
    p_system = pickle.dumps({"w": _Reduce(os.system, ("echo pwned",))}, protocol=2)  # GLOBAL posix.system
    p_eval = pickle.dumps(_Reduce(eval, ("1+1",)), protocol=4)  # STACK_GLOBAL builtins.eval
    open(os.path.join(BAD, "pickle_os_system.pkl"), "wb").write(p_system)
    pickle_zip(os.path.join(BAD, "pickle_os_system.bin"), p_system)
    bad["pickle_os_system.bin"] = "posix.system"
    pickle_zip(os.path.join(BAD, "pickle_eval.bin"), p_eval)
    bad["pickle_eval.bin"] = "builtins.eval"
    p_sub = pickle.dumps(_Reduce(__import__("subprocess").check_output, (["id"],)), protocol=3)
    pickle_zip(os.path.join(BAD, "pickle_subprocess.bin"), p_sub)
    bad["pickle_subprocess.bin"] = "subprocess.check_output"

    open(os.path.join(BAD, "truncated.bin"), "wb").write(ok[:len(ok) // 2])
    bad["truncated.bin"] = "end-of-central-directory"
    zip_rewrite(small, os.path.join(BAD, "zip_compressed.bin"), compress=zipfile.ZIP_DEFLATED)
    bad["zip_compressed.bin"] = "compressed"
    zip_rewrite(small, os.path.join(BAD, "missing_storage.bin"), drop="/data/0")
    bad["missing_storage.bin"] = "is missing from the archive"
    zip_rewrite(small, os.path.join(BAD, "storage_short.bin"), replace=("/data/0", b"\0" * 100))
    bad["storage_short.bin"] = "declares 64 elements"

    # Zip whose central directory points a local header beyond the end of the file.
    zbuf = bytearray(open(os.path.join(BAD, "missing_storage.bin"), "rb").read())
    cd = zbuf.find(b"PK\x01\x02")
    struct.pack_into("<I", zbuf, cd + 42, len(zbuf) + 1000)
    open(os.path.join(BAD, "zip_offset_past_eof.bin"), "wb").write(zbuf)
    bad["zip_offset_past_eof.bin"] = "local header offset"
    # Zip whose entry size runs past the end of the data.
    zbuf = bytearray(open(os.path.join(BAD, "missing_storage.bin"), "rb").read())
    cd = zbuf.find(b"PK\x01\x02")
    struct.pack_into("<II", zbuf, cd + 20, 1 << 30, 1 << 30)
    lh = 0
    struct.pack_into("<II", zbuf, lh + 18, 1 << 30, 1 << 30)
    open(os.path.join(BAD, "zip_entry_past_eof.bin"), "wb").write(zbuf)
    bad["zip_entry_past_eof.bin"] = "runs past the end"
    # Encrypted flag.
    zbuf = bytearray(open(os.path.join(BAD, "missing_storage.bin"), "rb").read())
    cd = zbuf.find(b"PK\x01\x02")
    struct.pack_into("<H", zbuf, cd + 8, 1)
    open(os.path.join(BAD, "zip_encrypted.bin"), "wb").write(zbuf)
    bad["zip_encrypted.bin"] = "encrypted"
    os.remove(small)

    f32 = np.arange(16, dtype=np.float32).tobytes()
    write_st(os.path.join(BAD, "st_size_mismatch.safetensors"),
             {"t": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}}, f32)
    bad["st_size_mismatch.safetensors"] = "needs 64 bytes"
    write_st(os.path.join(BAD, "st_offset_past_end.safetensors"),
             {"t": {"dtype": "F32", "shape": [4, 4], "data_offsets": [64, 128]}}, f32)
    bad["st_offset_past_end.safetensors"] = "outside the data section"
    write_st(os.path.join(BAD, "st_overlap.safetensors"),
             {"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
              "b": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}}, f32)
    bad["st_overlap.safetensors"] = "overlap"
    write_st(os.path.join(BAD, "st_header_too_long.safetensors"),
             {"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, f32, header_len=1 << 20)
    bad["st_header_too_long.safetensors"] = "exceeds the file size"
    write_st(os.path.join(BAD, "st_begin_after_end.safetensors"),
             {"t": {"dtype": "F32", "shape": [0], "data_offsets": [16, 8]}}, f32)
    bad["st_begin_after_end.safetensors"] = "begin > end"
    write_st(os.path.join(BAD, "st_bad_dtype.safetensors"),
             {"t": {"dtype": "C64", "shape": [2], "data_offsets": [0, 16]}}, f32)
    bad["st_bad_dtype.safetensors"] = "unsupported dtype 'C64'"
    write_st(os.path.join(BAD, "st_negative_shape.safetensors"),
             {"t": {"dtype": "F32", "shape": [-4, -4], "data_offsets": [0, 64]}}, f32)
    bad["st_negative_shape.safetensors"] = "non-negative"
    write_st(os.path.join(BAD, "st_huge_shape.safetensors"),
             {"t": {"dtype": "F32", "shape": [1 << 62, 1 << 62, 16], "data_offsets": [0, 64]}}, f32)
    bad["st_huge_shape.safetensors"] = "larger than the whole data section"
    write_st(os.path.join(BAD, "st_zero_dim_huge_shape.safetensors"),
             {"t": {"dtype": "F32", "shape": [0, 1 << 62, 1 << 62], "data_offsets": [0, 0]}}, f32)
    bad["st_zero_dim_huge_shape.safetensors"] = "is too large"
    h = b'{"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]'  # unterminated
    open(os.path.join(BAD, "st_bad_json.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + f32)
    bad["st_bad_json.safetensors"] = "invalid JSON"
    h = b'{"__metadata__": {"n": 5}}'
    open(os.path.join(BAD, "st_bad_metadata.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h)
    bad["st_bad_metadata.safetensors"] = "__metadata__"

    def npy_raw(name, header, data=b"", version=1):
        hb = header.encode("latin1")
        pre = b"\x93NUMPY" + bytes([version, 0]) + (struct.pack("<H", len(hb)) if version == 1
                                                   else struct.pack("<I", len(hb)))
        open(os.path.join(BAD, name), "wb").write(pre + hb + data)
    npy_raw("npy_bad_header.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2) \n",
            b"\0" * 16)
    bad["npy_bad_header.npy"] = "malformed .npy header"
    npy_raw("npy_truncated.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }\n", b"\0" * 60)
    bad["npy_truncated.npy"] = "needs 64 data bytes"
    npy_raw("npy_fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", b"\0" * 16)
    bad["npy_fortran.npy"] = "Fortran"
    npy_raw("npy_bigendian.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", b"\0" * 8)
    bad["npy_bigendian.npy"] = "big-endian"
    npy_raw("npy_header_len.npy", "{'descr': '<f4'", b"", version=2)
    with open(os.path.join(BAD, "npy_header_len.npy"), "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", 0x7fffffff))
    bad["npy_header_len.npy"] = "header length"
    npy_raw("npy_huge_shape.npy", "{'descr': '<f8', 'fortran_order': False, "
            "'shape': (4611686018427387904, 4611686018427387904), }\n", b"\0" * 8)
    bad["npy_huge_shape.npy"] = "needs more data than the file"
    npy_raw("npy_zero_dim_huge_shape.npy", "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (0, 4611686018427387904, 4611686018427387904), }\n", b"")
    bad["npy_zero_dim_huge_shape.npy"] = "needs more data than the file"


def npy_good(refs):
    os.makedirs(NPY, exist_ok=True)
    arrays = {
        "f4_2x3.npy": (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5, (1, 0)),
        "f8_4.npy": (np.array([1e-310, -2.5, 3.0, np.pi]), (1, 0)),
        "f2_3.npy": (np.array([0.5, -65504.0, 6e-8], dtype=np.float16), (1, 0)),
        "i8_2x2_v2.npy": (np.array([[1 << 40, -1], [0, 5]], dtype=np.int64), (2, 0)),
        "i4_scalar_v3.npy": (np.array(-7, dtype=np.int32), (3, 0)),
        "u1_5.npy": (np.array([0, 1, 128, 254, 255], dtype=np.uint8), (1, 0)),
        "b1_3.npy": (np.array([True, False, True]), (1, 0)),
        "f4_empty.npy": (np.zeros((0, 5), dtype=np.float32), (1, 0)),
    }
    expect = {}
    for name, (a, ver) in arrays.items():
        with open(os.path.join(NPY, name), "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
        dt = {np.float32: "F32", np.float64: "F64", np.float16: "F16", np.int64: "I64", np.int32: "I32",
              np.uint8: "U8", np.bool_: "BOOL"}[a.dtype.type]
        expect[name] = describe(name, dt, a, full=True)
    refs["npy"] = expect


def fuzz_seeds():
    """Seed corpus of the pickle fuzzer: the data.pkl of real checkpoints, plus the malicious pickles."""
    d = os.path.join(ROOT, "tests", "fuzz", "corpus", "pickle")
    os.makedirs(d, exist_ok=True)
    for src in ("io/torch_features.pt", "io/torch_features_p4.pt", "io/torch_wrapped.ckpt",
                "models/encoder/pytorch_model.bin"):
        with zipfile.ZipFile(os.path.join(FIX, src)) as z:
            name = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            data = z.read(name)
        with open(os.path.join(d, os.path.basename(src).split(".")[0] + ".pkl"), "wb") as f:
            f.write(data)
    shutil.copy(os.path.join(BAD, "pickle_os_system.pkl"), d)


def main():
    for d in (OUT, BAD, NPY):
        os.makedirs(d, exist_ok=True)
    refs = {"generator": "scripts/gen_io_refs.py", "torch": torch.__version__, "numpy": np.__version__,
            "files": {}}
    model_refs(refs)
    feature_checkpoints(refs)
    safetensors_good(refs)
    npy_good(refs)
    bad = {}
    bad_files(bad)
    refs["bad"] = bad
    fuzz_seeds()
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(refs, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
