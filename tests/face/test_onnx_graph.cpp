// The ONNX loader and interpreter: operator cases exported by torch.onnx with PyTorch's outputs
// (tests/face/data/onnx, scripts/face_make_onnx_cases.py), the fixture models' structure, and clear errors
// for malformed, unsupported or external-data models.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <functional>

#include "backends/cpu/cpu_backend.h"
#include "backends/ref/ref_backend.h"
#include "face_test_util.h"
#include "io/npy.h"
#include "io/onnx.h"
#include "models/onnx_graph.h"

namespace a2f {
namespace {

using test::face_data;

void expect_error(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

void run_cases(Backend& be, const OnnxGraphOptions& go = {}) {
  auto cases = test::read_json(face_data("onnx/cases.json"));
  ASSERT_GE(cases["cases"].size(), 5u);
  for (const auto& [name, c] : cases["cases"].items()) {
    SCOPED_TRACE(name);
    auto g = OnnxGraph::load(face_data("onnx/" + name + ".onnx"), be, go);
    ASSERT_EQ(g->outputs().size(), c["outputs"].get<size_t>());
    for (int r = 0; r < c["runs"].get<int>(); ++r) {
      SCOPED_TRACE(r);
      const std::string base = "onnx/" + name + ".run" + std::to_string(r);
      Tensor x = npy_read(face_data(base + ".in0.npy"));
      std::vector<Tensor> ys = g->run({x});
      ASSERT_EQ(ys.size(), g->outputs().size());
      for (size_t i = 0; i < ys.size(); ++i) {
        Tensor ref = npy_read(face_data(base + ".out" + std::to_string(i) + ".npy"));
        Tensor y = be.to_host(ys[i]);
        ASSERT_EQ(y.shape(), ref.shape()) << "output " << i;
        EXPECT_LE(test::max_abs_diff(y, ref),
                  2e-5 * std::max(1.0, test::max_abs_diff(ref, Tensor::zeros(ref.shape()))))
            << "output " << i;
      }
    }
  }
}

TEST(FaceOnnx, TorchExportedCasesRefBackend) {
  auto be = make_ref_backend();
  run_cases(*be);
}

TEST(FaceOnnx, TorchExportedCasesCpuBackend) {
  auto be = make_cpu_backend();
  run_cases(*be);
  OnnxGraphOptions no_fuse;
  no_fuse.fuse = false;
  run_cases(*be, no_fuse);
}

TEST(FaceOnnx, FixtureModelsStructure) {
  auto manifest = test::read_json(test::fixture("face/manifest.json"));
  auto be = make_ref_backend();
  for (const char* key : {"scrfd", "arcface"}) {
    SCOPED_TRACE(key);
    const auto& m = manifest[key];
    OnnxModel model = onnx_load(test::fixture("face/" + m["file"].get<std::string>()));
    EXPECT_EQ(model.opset, 11);
    EXPECT_EQ(model.ir_version, m["ir_version"].get<int64_t>());
    EXPECT_EQ(model.nodes.size(), m["n_nodes"].get<size_t>());
    EXPECT_EQ(model.initializers.size(), m["n_initializers"].get<size_t>());
    int64_t params = 0;
    for (const auto& [n, t] : model.initializers) params += t.numel();
    EXPECT_EQ(params, m["n_params"].get<int64_t>());
    ASSERT_EQ(model.inputs.size(), 1u);
    EXPECT_EQ(model.inputs[0].name, m["inputs"][0][0].get<std::string>());
    ASSERT_EQ(model.outputs.size(), m["outputs"].size());
    for (size_t i = 0; i < model.outputs.size(); ++i)
      EXPECT_EQ(model.outputs[i].name, m["outputs"][i][0].get<std::string>());
    OnnxGraph g(std::move(model), *be);
    std::map<std::string, int> want;
    for (const auto& [op, n] : m["ops"].items()) want[op] = n.get<int>();
    EXPECT_EQ(g.op_counts(), want);
    for (size_t i = 0; i < 8; ++i)
      EXPECT_EQ(g.node_names()[i], m["first_8_node_names"][i].get<std::string>());
  }
  auto g = OnnxGraph::load(test::fixture("face/antelopev2_mini/scrfd_10g_bnkps.onnx"), *be);
  EXPECT_EQ(g->inputs()[0].shape_desc(), "[1, 3, ?, ?]");
  EXPECT_EQ(g->outputs()[0].shape_desc(), "[12800, 1]");  // declared (stale at other sizes)
}

TEST(FaceOnnx, ShapesComputedAtRunTime) {
  // The detector at a non-640 size: output rows follow the input, not the declared 640x640 shapes.
  auto be = make_cpu_backend();
  auto g = OnnxGraph::load(test::fixture("face/antelopev2_mini/scrfd_10g_bnkps.onnx"), *be);
  std::vector<std::string> names;
  g->set_dump([&](const std::string& n, const Tensor&) { names.push_back(n); });
  auto ys = g->run({Tensor::full({1, 3, 96, 160}, 0.25f)});
  ASSERT_EQ(ys.size(), 9u);
  const int64_t cells[3] = {12 * 20, 6 * 10, 3 * 5};
  const int64_t cols[3] = {1, 4, 10};
  for (int k = 0; k < 3; ++k)
    for (int s = 0; s < 3; ++s) A2F_EXPECT_SHAPE(ys[k * 3 + s], cells[s] * 2, cols[k]);
  EXPECT_FALSE(names.empty());
  EXPECT_EQ(names.back(), "500");
}

TEST(FaceOnnx, RunInputChecks) {
  auto be = make_ref_backend();
  auto g = OnnxGraph::load(test::fixture("face/antelopev2_mini/arcface.onnx"), *be);
  expect_error([&] { g->run({Tensor::zeros({1, 3, 100, 100})}); }, "expects shape [None, 3, 112, 112]");
  expect_error([&] { g->run({}); }, "0 inputs given");
}

// --- Malformed and unsupported models ---------------------------------------------------------------------

onnx::ModelProto tiny_model(const std::string& op = "Relu") {
  onnx::ModelProto m;
  m.set_ir_version(6);
  m.add_opset_import()->set_version(11);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_value(1);
  tt->mutable_shape()->add_dim()->set_dim_value(4);
  g->add_output()->set_name("y");
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(op + "_0");
  n->add_input("x");
  n->add_output("y");
  return m;
}

void save(const onnx::ModelProto& m, const std::filesystem::path& p) {
  std::string s;
  ASSERT_TRUE(m.SerializeToString(&s));
  test::write_bytes(p, s.data(), s.size());
}

TEST(FaceOnnx, LoadErrorsAreClear) {
  test::TempDir dir("onnx_err");
  auto be = make_ref_backend();
  expect_error([&] { onnx_load(dir / "missing.onnx"); }, "No such file");
  test::write_bytes(dir / "empty.onnx", "", 0);
  expect_error([&] { onnx_load(dir / "empty.onnx"); }, "empty");
  const char junk[] = "\xff\xff\xff\xff this is not a protobuf";
  test::write_bytes(dir / "junk.onnx", junk, sizeof(junk));
  expect_error([&] { onnx_load(dir / "junk.onnx"); }, "not a valid ONNX model");
  auto real = test::read_bytes(test::fixture("face/antelopev2_mini/arcface.onnx"));
  test::write_bytes(dir / "trunc.onnx", real.data(), real.size() / 2);
  expect_error([&] { onnx_load(dir / "trunc.onnx"); }, "not a valid ONNX model");
  // Found by fuzz_onnx: an initializer of shape [0, huge, huge] (0 elements, but strides would overflow).
  expect_error([&] { onnx_load(test::fixture("io/bad/onnx_zero_dim_huge_shape.onnx")); }, "too large");
  // And one whose dimensions multiply past int64 (also fuzz_onnx).
  expect_error([&] { onnx_load(test::fixture("io/bad/onnx_dims_overflow.onnx")); }, "too many elements");
  expect_error(
      [&] { onnx_load(test::fixture("face/antelopev2_mini/arcface.onnx"), {.max_file_bytes = 1000}); },
      "over the limit");

  // External data.
  {
    onnx::ModelProto m = tiny_model("Add");
    m.mutable_graph()->mutable_node(0)->add_input("w");
    auto* w = m.mutable_graph()->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto_DataType_FLOAT);
    w->add_dims(4);
    w->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
    auto* kv = w->add_external_data();
    kv->set_key("location");
    kv->set_value("weights.bin");
    save(m, dir / "ext.onnx");
    expect_error([&] { onnx_load(dir / "ext.onnx"); }, "external file ('weights.bin')");
  }
  // Initializer data that does not match its shape.
  {
    onnx::ModelProto m = tiny_model("Add");
    m.mutable_graph()->mutable_node(0)->add_input("w");
    auto* w = m.mutable_graph()->add_initializer();
    w->set_name("w");
    w->set_data_type(onnx::TensorProto_DataType_FLOAT);
    w->add_dims(4);
    w->set_raw_data(std::string(12, '\0'));
    save(m, dir / "short.onnx");
    expect_error([&] { onnx_load(dir / "short.onnx"); },
                 "initializer 'w': has 12 bytes of data, expected 16");
    w->clear_raw_data();
    w->add_float_data(1.0f);
    save(m, dir / "short2.onnx");
    expect_error([&] { onnx_load(dir / "short2.onnx"); }, "has 1 values in float_data, expected 4");
    w->set_data_type(onnx::TensorProto_DataType_STRING);
    save(m, dir / "str.onnx");
    expect_error([&] { onnx_load(dir / "str.onnx"); }, "element type string");
  }
  // Unsupported operator, attribute, domain; malformed graphs.
  save(tiny_model("Pad"), dir / "pad.onnx");
  expect_error([&] { OnnxGraph::load(dir / "pad.onnx", *be); },
               "Pad node 'Pad_0': operator Pad is not supported");
  {
    onnx::ModelProto m = tiny_model("Relu");
    auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name("alpha");
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(0.1f);
    save(m, dir / "attr.onnx");
    expect_error([&] { OnnxGraph::load(dir / "attr.onnx", *be); },
                 "attribute 'alpha' is not supported for Relu");
  }
  {
    onnx::ModelProto m = tiny_model("Relu");
    m.mutable_graph()->mutable_node(0)->set_domain("com.microsoft");
    save(m, dir / "dom.onnx");
    expect_error([&] { OnnxGraph::load(dir / "dom.onnx", *be); }, "domain 'com.microsoft'");
  }
  {
    onnx::ModelProto m = tiny_model("Relu");
    m.mutable_graph()->mutable_node(0)->set_input(0, "nowhere");
    save(m, dir / "dangling.onnx");
    expect_error([&] { OnnxGraph::load(dir / "dangling.onnx", *be); }, "input 'nowhere' is not produced");
  }
  {
    onnx::ModelProto m = tiny_model("Resize");
    m.mutable_graph()->mutable_node(0)->add_input("x");
    auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name("mode");
    a->set_type(onnx::AttributeProto_AttributeType_STRING);
    a->set_s("linear");
    save(m, dir / "linear.onnx");
    expect_error([&] { OnnxGraph::load(dir / "linear.onnx", *be); }, "mode=linear is not supported");
  }
  {
    onnx::ModelProto m = tiny_model("Relu");
    m.mutable_opset_import(0)->set_version(5);
    save(m, dir / "old.onnx");
    expect_error([&] { OnnxGraph::load(dir / "old.onnx", *be); }, "opset 5 is not supported");
  }
  // A valid tiny graph runs.
  save(tiny_model("Relu"), dir / "ok.onnx");
  auto g = OnnxGraph::load(dir / "ok.onnx", *be);
  Tensor y = g->run({Tensor::from_data({1, 4}, std::vector<float>{-1, 2, -3, 4})})[0];
  EXPECT_EQ(y.to_vector(), (std::vector<float>{0, 2, 0, 4}));
}

}  // namespace
}  // namespace a2f
