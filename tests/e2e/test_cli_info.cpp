// `arc2face info` run as a user runs it: the built binary (A2F_BIN_DIR) on fixture files and on bad files.
// Expected counts and sizes come from tests/fixtures/io/refs.json (scripts/gen_io_refs.py: torch.load and an
// independent Python safetensors reader).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/cli_util.h"
#include "common/test_util.h"
#include "io/json.h"

namespace {

using a2f::test::CliRun;
using a2f::test::q;
using a2f::test::run_cli;

const nlohmann::json& refs() {
  static const nlohmann::json j = a2f::json_load(a2f::test::fixture("io/refs.json"));
  return j;
}

class CliInfo : public ::testing::TestWithParam<std::string> {};

TEST_P(CliInfo, JsonTotalsMatchTheReference) {
  const std::string rel = GetParam();
  const auto& ref = refs().at("files").at(rel);
  CliRun r = run_cli("info --json " + q(a2f::test::fixture(rel)));
  ASSERT_EQ(r.status, 0) << r.out;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("total").at("tensors"), ref.at("count"));
  EXPECT_EQ(j.at("total").at("parameters"), ref.at("params"));
  EXPECT_EQ(j.at("total").at("bytes"), ref.at("bytes"));
  EXPECT_EQ(j.at("metadata"), ref.at("metadata"));
  EXPECT_EQ(j.at("file_bytes").get<uint64_t>(), std::filesystem::file_size(a2f::test::fixture(rel)));
  for (const auto& tr : ref.at("tensors")) {
    bool found = false;
    for (const auto& t : j.at("tensors")) {
      if (t.at("name") != tr.at("name")) continue;
      found = true;
      EXPECT_EQ(t.at("shape"), tr.at("shape"));
    }
    EXPECT_TRUE(found) << tr.at("name");
  }
}

INSTANTIATE_TEST_SUITE_P(E2e, CliInfo,
                         ::testing::Values("models/encoder/pytorch_model.bin",
                                           "models/arc2face/diffusion_pytorch_model.safetensors",
                                           "models/lcm-lora/pytorch_lora_weights.safetensors"));

TEST(CliInfoText, TableListsTensorsTotalsAndMetadata) {
  CliRun r = run_cli("info " + q(a2f::test::fixture("io/all_dtypes.safetensors")));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("format: safetensors"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note: io test"), std::string::npos) << r.out;  // __metadata__
  EXPECT_NE(r.out.find("c_bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[0, 4]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total: 11 tensors"), std::string::npos) << r.out;
}

TEST(CliInfoText, NpyFile) {
  CliRun r = run_cli("info " + q(a2f::test::fixture("io/npy/f4_2x3.npy")));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("format: npy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[2, 3]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total: 1 tensors, 6 parameters, 24 bytes"), std::string::npos) << r.out;
}

TEST(CliInfoErrors, MaliciousPickleIsRefusedWithoutRunningIt) {
  CliRun r = run_cli("info " + q(a2f::test::fixture("io/bad/pickle_os_system.bin")));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("error: refusing to load"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'posix.system'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("pwned"), std::string::npos) << r.out;
}

TEST(CliInfoErrors, BadAndMissingFiles) {
  CliRun r = run_cli("info " + q(a2f::test::fixture("io/bad/st_overlap.safetensors")));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("overlap"), std::string::npos) << r.out;
  r = run_cli("info " + q(a2f::test::fixture("io/no_such_file.bin")));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot open"), std::string::npos) << r.out;
  r = run_cli("info " + q(a2f::test::fixture("models/encoder/config.json")));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("unknown file format"), std::string::npos) << r.out;
  r = run_cli("info");  // usage error: CLI11's message, non-zero
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_LT(r.status, 128) << r.out;  // not a signal
}

}  // namespace
