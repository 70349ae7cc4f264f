// Several identities in one UNet batch (GenerateRequest::id_embeddings with per_image_seeds): each image must
// be exactly the image generated alone from its identity and seed, whatever else is in the batch. The dataset
// tool relies on it only through fixed unit composition (docs/dataset.md), but regenerating any image alone
// with `arc2face generate` relies on it directly.
#include <gtest/gtest.h>

#include "arc2face/arc2face.h"
#include "arc2face/dataset.h"
#include "common/test_util.h"

namespace {

using a2f::test::fixture;

std::unique_ptr<arc2face::Pipeline> tiny_pipeline() {
  arc2face::PipelineOptions o;
  o.models_dir = fixture("models").string();
  o.base_dir = fixture("models/sd15").string();
  o.threads = 1;
  return arc2face::Pipeline::create(o);
}

arc2face::GenerateRequest tiny_request(int n, int64_t seed) {
  arc2face::GenerateRequest r;
  r.num_images = n;
  r.steps = 3;
  r.seed = seed;
  r.per_image_seeds = true;
  r.width = r.height = 64;
  return r;
}

TEST(DatasetBatch, EachRowIsTheImageGeneratedAlone) {
  auto pipe = tiny_pipeline();
  const auto ids = arc2face::sample_identities(3, 5);
  for (int n : {2, 3, 5}) {
    auto r = tiny_request(n, 40);
    for (int i = 0; i < n; ++i) r.id_embeddings.insert(r.id_embeddings.end(), ids[i % 3].begin(), ids[i % 3].end());
    const auto batch = pipe->generate(r);
    ASSERT_EQ(int(batch.size()), n);
    for (int i = 0; i < n; ++i) {
      auto one = tiny_request(1, 40 + i);
      one.id_embedding = ids[i % 3];
      const auto alone = pipe->generate(one);
      EXPECT_EQ(batch[i].seed, 40 + i);
      EXPECT_EQ(batch[i].rgb, alone.at(0).rgb) << "batch of " << n << ", row " << i;
    }
  }
  // Identities differ: the images of rows 0 and 1 (different identities and seeds) differ.
  auto r = tiny_request(2, 40);
  for (int i = 0; i < 2; ++i) r.id_embeddings.insert(r.id_embeddings.end(), ids[i].begin(), ids[i].end());
  const auto b = pipe->generate(r);
  EXPECT_NE(b[0].rgb, b[1].rgb);
}

TEST(DatasetBatch, OneRowPerImageIsChecked) {
  auto pipe = tiny_pipeline();
  auto r = tiny_request(2, 1);
  r.id_embeddings.assign(3 * 512, 0.1f);
  EXPECT_THROW(pipe->generate(r), arc2face::Error);
  r.id_embeddings.assign(2 * 512, 0.1f);
  r.id_embeddings[700] = NAN;
  EXPECT_THROW(pipe->generate(r), arc2face::Error);
}

}  // namespace
