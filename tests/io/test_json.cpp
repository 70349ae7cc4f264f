// json_load / json_parse errors and the typed getters.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "io/json.h"

namespace a2f {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Json, LoadsConfigAndReadsTypedValues) {
  nlohmann::json j = json_load(test::fixture("models/encoder/config.json"));
  const std::string what = "'encoder/config.json'";
  EXPECT_EQ(json_get<int>(j, "hidden_size", what), 32);  // the tiny fixture's config (README: hidden 32)
  EXPECT_EQ(json_get<std::string>(j, "hidden_act", what), "quick_gelu");
  EXPECT_EQ(json_get_or<int>(j, "no_such_key", 7, what), 7);
  std::string msg = error_of([&] { json_get<int>(j, "no_such_key", what); });
  EXPECT_NE(msg.find("'encoder/config.json': key 'no_such_key' is missing"), std::string::npos) << msg;
  msg = error_of([&] { json_get<int>(j, "hidden_act", what); });
  EXPECT_NE(msg.find("key 'hidden_act' has an unexpected type (string)"), std::string::npos) << msg;
}

TEST(Json, ErrorsNameTheFileAndPosition) {
  std::string msg = error_of([] { json_load(test::fixture("no/such/config.json")); });
  EXPECT_NE(msg.find("no/such/config.json"), std::string::npos) << msg;
  msg = error_of([] { json_parse("{\"a\": 1,\n \"b\": }", "'x.json'"); });
  EXPECT_NE(msg.find("'x.json': invalid JSON at byte 16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  msg = error_of([] { json_parse(std::string(100000, '['), "'deep.json'"); });
  EXPECT_NE(msg.find("nested deeper than 256"), std::string::npos) << msg;
}

}  // namespace
}  // namespace a2f
