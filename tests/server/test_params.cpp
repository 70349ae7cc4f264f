// Validation of generation parameters: defaults (the official demo's), ranges, types, LCM switching.
#include <gtest/gtest.h>

#include "server/params.h"

namespace a2f_server {
namespace {

using nlohmann::json;

GenerateParams parse(const json& body, bool lcm_available = false, uint64_t random = 12345) {
  return parse_generate_params(body, Limits{}, Defaults{}, lcm_available, random);
}

int status_of(const json& body, bool lcm_available = false) {
  try {
    parse(body, lcm_available);
  } catch (const ApiError& e) {
    return e.status;
  }
  return 0;
}

std::string message_of(const json& body, bool lcm_available = false) {
  try {
    parse(body, lcm_available);
  } catch (const ApiError& e) {
    return e.what();
  }
  return "";
}

TEST(Params, DefaultsAreTheOfficialDemos) {
  auto p = parse(json::object());
  EXPECT_EQ(p.steps, 25);
  EXPECT_DOUBLE_EQ(p.guidance, 3.0);
  EXPECT_EQ(p.num_images, 2);
  EXPECT_EQ(p.scheduler, "dpm++2m");
  EXPECT_FALSE(p.lcm);
  EXPECT_TRUE(p.seed_was_random);
  EXPECT_EQ(p.seed, int64_t(12345));
  EXPECT_TRUE(p.per_image_seeds);
}

TEST(Params, LcmSwitchesDefaultsAndScheduler) {
  auto p = parse(json{{"lcm", true}}, /*lcm_available=*/true);
  EXPECT_EQ(p.steps, 3);
  EXPECT_DOUBLE_EQ(p.guidance, 1.0);
  EXPECT_EQ(p.scheduler, "lcm");
  auto q = parse(json{{"lcm", true}, {"steps", 4}, {"guidance", 1.5}}, true);
  EXPECT_EQ(q.steps, 4);
  EXPECT_DOUBLE_EQ(q.guidance, 1.5);
  EXPECT_EQ(status_of(json{{"lcm", true}, {"scheduler", "euler"}}, true), 400);
  EXPECT_EQ(status_of(json{{"scheduler", "lcm"}}, true), 400);
}

TEST(Params, LcmWithoutLoraIsRefusedClearly) {
  EXPECT_EQ(status_of(json{{"lcm", true}}), 400);
  EXPECT_NE(message_of(json{{"lcm", true}}).find("this server was started without --lcm-lora"),
            std::string::npos);
  EXPECT_EQ(status_of(json{{"lcm", false}}), 0);
}

TEST(Params, Ranges) {
  EXPECT_EQ(status_of(json{{"steps", 0}}), 400);
  EXPECT_EQ(status_of(json{{"steps", 1}}), 0);
  EXPECT_EQ(status_of(json{{"steps", 100}}), 0);
  EXPECT_EQ(status_of(json{{"steps", 101}}), 400);
  EXPECT_EQ(status_of(json{{"guidance", 0.05}}), 400);
  EXPECT_EQ(status_of(json{{"guidance", 0.1}}), 0);
  EXPECT_EQ(status_of(json{{"guidance", 1.0}}), 0);
  EXPECT_EQ(status_of(json{{"guidance", 10}}), 0);
  EXPECT_EQ(status_of(json{{"guidance", 10.5}}), 400);
  EXPECT_EQ(status_of(json{{"num_images", 0}}), 400);
  EXPECT_EQ(status_of(json{{"num_images", 4}}), 0);
  EXPECT_EQ(status_of(json{{"num_images", 5}}), 400);
  EXPECT_EQ(status_of(json{{"width", 100}}), 400);  // not a multiple of 8
  EXPECT_EQ(status_of(json{{"width", 1024}, {"height", 1024}}), 0);
  EXPECT_EQ(status_of(json{{"width", 1024}, {"height", 1032}}), 400);  // over the pixel limit
  EXPECT_EQ(status_of(json{{"width", 56}}), 400);
  EXPECT_EQ(status_of(json{{"seed", -1}}), 400);
  EXPECT_EQ(status_of(json{{"seed", 9223372036854775807LL}}), 400);  // seed + index would overflow
  EXPECT_EQ(status_of(json{{"seed", 9223372036854775807LL}, {"per_image_seeds", false}}), 0);
  EXPECT_EQ(status_of(json{{"seed", 18446744073709551615ULL}}), 400);
}

TEST(Params, Types) {
  EXPECT_EQ(status_of(json{{"steps", "25"}}), 400);
  EXPECT_EQ(status_of(json{{"steps", 25.5}}), 400);
  EXPECT_EQ(status_of(json{{"guidance", "3"}}), 400);
  EXPECT_EQ(status_of(json{{"lcm", 1}}), 400);
  EXPECT_EQ(status_of(json{{"seed", 1.5}}), 400);
  EXPECT_EQ(status_of(json{{"seed", json::array()}}), 400);
  EXPECT_EQ(status_of(json{{"scheduler", 3}}), 400);
  EXPECT_EQ(status_of(json{{"scheduler", "dpm"}}), 400);
  EXPECT_EQ(status_of(json{{"stepz", 3}}), 400);
  EXPECT_EQ(status_of(json::array()), 400);
  EXPECT_NE(message_of(json{{"steps", "25"}}).find("steps must be an integer"), std::string::npos);
}

TEST(Params, SeedGivenOrRandom) {
  auto p = parse(json{{"seed", 42}});
  EXPECT_EQ(p.seed, 42);
  EXPECT_FALSE(p.seed_was_random);
  auto q = parse(json{{"seed", 42}, {"randomize_seed", true}}, false, 7);
  EXPECT_EQ(q.seed, 7);
  EXPECT_TRUE(q.seed_was_random);
  auto r = parse(json{{"seed", nullptr}}, false, (uint64_t(1) << 40) + 3);
  EXPECT_EQ(r.seed, 3);  // random seeds are 0..2^31-1 like the demo's
}

TEST(Params, ToRequest) {
  auto r = parse(json{{"steps", 7},
                      {"guidance", 2.5},
                      {"num_images", 3},
                      {"seed", 9},
                      {"width", 64},
                      {"height", 128}})
               .to_request();
  EXPECT_EQ(r.steps, 7);
  EXPECT_FLOAT_EQ(r.guidance, 2.5f);
  EXPECT_EQ(r.num_images, 3);
  EXPECT_EQ(r.seed, 9);
  EXPECT_EQ(r.width, 64);
  EXPECT_EQ(r.height, 128);
  EXPECT_TRUE(r.per_image_seeds);
  EXPECT_FALSE(r.lcm);
  auto l = parse(json{{"lcm", true}}, /*lcm_available=*/true).to_request();
  EXPECT_TRUE(l.lcm);
  EXPECT_EQ(l.scheduler, "lcm");
  EXPECT_EQ(l.steps, 3);
  EXPECT_FLOAT_EQ(l.guidance, 1.0f);
}

TEST(IdEmbedding, Validation) {
  json ok = json::array();
  for (int i = 0; i < 512; ++i) ok.push_back(i == 3 ? 2.0 : 0.0);
  EXPECT_EQ(parse_id_embedding(ok).size(), 512u);
  auto status = [](const json& v) {
    try {
      parse_id_embedding(v);
    } catch (const ApiError& e) {
      return e.status;
    }
    return 0;
  };
  EXPECT_EQ(status(json::array()), 400);
  json short_one = ok;
  short_one.erase(short_one.begin());
  EXPECT_EQ(status(short_one), 400);
  json with_string = ok;
  with_string[10] = "x";
  EXPECT_EQ(status(with_string), 400);
  json zeros = json::array();
  for (int i = 0; i < 512; ++i) zeros.push_back(0);
  EXPECT_EQ(status(zeros), 400);
  EXPECT_EQ(status(json("1,2,3")), 400);
}

}  // namespace
}  // namespace a2f_server
