// The interpreter on full-size SCRFD-10G-bnkps and IResNet100 graphs (random weights, exported like the
// release files by scripts/make_full_width_onnx.py) against the outputs PyTorch computed for the same inputs.
// Skipped when /usr/bin/python3 lacks torch (CI installs python3-torch, so it runs there).
#include <gtest/gtest.h>

#include "backends/cpu/cpu_backend.h"
#include "face_test_util.h"
#include "full_width.h"
#include "io/npy.h"
#include "models/onnx_graph.h"
#include "pipeline/face/embed.h"
#include "pipeline/face/identity.h"

namespace a2f {
namespace {

TEST(FaceFullWidth, Scrfd10gMatchesTorch) {
  auto fw = test::full_width_models();
  if (!fw.available) GTEST_SKIP() << fw.why;
  auto manifest = test::read_json(fw.dir / "manifest.json");
  auto be = make_cpu_backend();
  auto g = OnnxGraph::load(fw.dir / "scrfd_10g_bnkps.onnx", *be);
  EXPECT_EQ(g->op_counts()["Conv"], 58);
  EXPECT_EQ(g->op_counts()["Resize"], 2);
  EXPECT_EQ(g->inputs()[0].shape_desc(), "[1, 3, ?, ?]");
  for (const auto& hw : manifest["scrfd"]["sizes"]) {
    const std::string tag = std::to_string(hw[0].get<int>()) + "x" + std::to_string(hw[1].get<int>());
    SCOPED_TRACE(tag);
    std::vector<Tensor> ys = g->run({npy_read(fw.dir / ("scrfd_in_" + tag + ".npy"))});
    ASSERT_EQ(ys.size(), 9u);
    for (size_t i = 0; i < 9; ++i) {
      Tensor ref = npy_read(fw.dir / ("scrfd_out_" + tag + "_" + std::to_string(i) + ".npy"));
      ASSERT_EQ(ys[i].shape(), ref.shape()) << "output " << i;
      // fp32 with a different summation order than PyTorch through 50+ layers.
      EXPECT_LE(test::rel_error(ys[i], ref), 1e-4) << "output " << i;
      ::testing::Test::RecordProperty(tag + "_out" + std::to_string(i) + "_rel",
                                      cat(test::rel_error(ys[i], ref)));
    }
  }
}

TEST(FaceFullWidth, IResNet100MatchesTorch) {
  auto fw = test::full_width_models();
  if (!fw.available) GTEST_SKIP() << fw.why;
  auto be = make_cpu_backend();
  face::ArcFaceRecognizer rec(OnnxGraph::load(fw.dir / "arcface.onnx", *be));
  EXPECT_EQ(rec.input_size(), 112);
  EXPECT_EQ(rec.input_mean(), 127.5f);  // a PyTorch export: no Sub/Mul nodes at the start
  auto counts = rec.graph().op_counts();
  EXPECT_EQ(counts["Conv"], 103);
  EXPECT_EQ(counts["BatchNormalization"], 51);
  EXPECT_EQ(counts["PRelu"], 50);
  Tensor x = npy_read(fw.dir / "arcface_in.npy");
  Tensor ref = npy_read(fw.dir / "arcface_out.npy");
  Tensor y = rec.graph().run({x})[0];
  ASSERT_EQ(y.shape(), ref.shape());
  const double cos = face::cosine(y.to_vector(), ref.to_vector());
  EXPECT_GE(cos, 0.99999);
  EXPECT_LE(test::rel_error(y, ref), 1e-3);
  ::testing::Test::RecordProperty("one_minus_cos", cat(1.0 - cos));
  ::testing::Test::RecordProperty("rel_error", cat(test::rel_error(y, ref)));
}

}  // namespace
}  // namespace a2f
