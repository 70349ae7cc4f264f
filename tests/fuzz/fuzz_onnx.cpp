// libFuzzer: onnx_parse (protobuf decoding, then our conversion of nodes, attributes, initializers and value
// infos into plain structs) on arbitrary bytes, as a downloaded or user-supplied .onnx file is read.
#include <cstdint>

#include "core/error.h"
#include "io/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    a2f::OnnxModel m = a2f::onnx_parse(data, size, "fuzz");
    size_t sink = m.nodes.size() + m.inputs.size() + m.outputs.size();
    for (const auto& [name, t] : m.initializers) sink += t.nbytes();
    for (const auto& n : m.nodes) sink += n.desc().size();
    for (const auto& v : m.inputs) sink += v.shape_desc().size();
    volatile size_t keep = sink;
    (void)keep;
  } catch (const a2f::Error&) {
  }
  return 0;
}
