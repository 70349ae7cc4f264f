// `arc2face dataset` as a cluster runs it: three shard processes at once (shard index from --shard, from a
// Slurm array's environment and from a Kubernetes Indexed Job's), one killed with SIGKILL after it wrote some
// images and restarted, then `arc2face dataset merge`: every (identity, image) exists exactly once, byte-identical
// to a single-process run with the same seed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/cli_util.h"
#include "common/test_util.h"

namespace fs = std::filesystem;
using a2f::test::fixture;
using a2f::test::q;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::map<std::string, std::string> files_under(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).generic_string()] = slurp(e.path());
  return out;
}

size_t count_lines(const fs::path& p) {
  const std::string s = slurp(p);
  return size_t(std::count(s.begin(), s.end(), '\n'));
}

// fork + exec of the built binary with extra environment variables; output into `log`.
pid_t spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env, const fs::path& log) {
  const std::string bin = std::string(A2F_BIN_DIR) + "/arc2face";
  std::vector<std::string> argv_s = {bin};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid == 0) {
    for (const char* n : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP",
                          "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "ARC2FACE_SHARD_COUNT"})
      unsetenv(n);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

class CliDataset : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("a2f_cli_dataset_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // 5 identities x 3 images, one image per unit: 15 units, 5 per shard of 3.
  std::vector<std::string> args(const fs::path& out) const {
    return {"dataset", "--identities", "5", "--per-identity", "3", "--seed", "21", "--batch", "1", "--steps", "2",
            "--width", "64", "--height", "64", "--threads", "1", "-q", "--models", fixture("models").string(),
            "--base", fixture("models/sd15").string(), "--antelope", fixture("face/antelopev2_mini").string(),
            "--out", out.string()};
  }
  fs::path dir_;
};

int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

TEST_F(CliDataset, ThreeShardsOneKilledAndRestartedThenMergeEqualsOneProcess) {
  // The reference: one process, the same seed.
  const fs::path ref = dir_ / "ref", par = dir_ / "par";
  ASSERT_EQ(wait_exit(spawn(args(ref), {}, dir_ / "ref.log")), 0) << slurp(dir_ / "ref.log");
  auto m = a2f::test::run_cli("dataset merge --out " + q(ref));
  ASSERT_EQ(m.status, 0) << m.out;

  // Three shards at once; shard 1 is killed after its first image.
  auto with = [&](std::vector<std::string> a, std::vector<std::string> extra) {
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const pid_t p0 = spawn(with(args(par), {"--shard", "0/3"}), {}, dir_ / "s0.log");
  const pid_t p1 = spawn(args(par), {{"SLURM_ARRAY_TASK_ID", "11"}, {"SLURM_ARRAY_TASK_MIN", "10"},
                                     {"SLURM_ARRAY_TASK_COUNT", "3"}}, dir_ / "s1.log");
  const pid_t p2 = spawn(with(args(par), {"--shard-count", "3"}), {{"JOB_COMPLETION_INDEX", "2"}}, dir_ / "s2.log");
  const fs::path m1 = par / "manifest" / "shard-00001-of-00003.jsonl";
  const auto t0 = std::chrono::steady_clock::now();
  while (!(fs::exists(m1) && count_lines(m1) >= 1) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(p1, SIGKILL);
  ASSERT_EQ(wait_exit(p1), -SIGKILL) << "shard 1 finished before it could be killed: " << slurp(dir_ / "s1.log");
  const size_t written = count_lines(m1);
  EXPECT_GE(written, 1u);
  EXPECT_LT(written, 5u);
  EXPECT_EQ(wait_exit(p0), 0) << slurp(dir_ / "s0.log");
  EXPECT_EQ(wait_exit(p2), 0) << slurp(dir_ / "s2.log");

  // What a kill in the middle of a write leaves: a temporary file and a torn manifest line.
  fs::path tmp;
  for (int g = 1; g < 15 && tmp.empty(); g += 3) {  // shard 1: units 1, 4, 7, 10, 13
    const fs::path png = par / "images" / ("00000" + std::to_string(g / 3)) / ("000" + std::to_string(g % 3) + ".png");
    if (!fs::exists(png)) tmp = png.string() + ".tmp";
  }
  ASSERT_FALSE(tmp.empty());
  fs::create_directories(tmp.parent_path());
  std::ofstream(tmp, std::ios::binary) << "\x89PNG half-written";
  std::ofstream(m1, std::ios::binary | std::ios::app) << "{\"id\":1,\"index\":";

  // Merge before the restart: incomplete, names the shard to rerun.
  m = a2f::test::run_cli("dataset merge --out " + q(par));
  EXPECT_EQ(m.status, 1) << m.out;
  EXPECT_NE(m.out.find("shard 1/3"), std::string::npos) << m.out;
  EXPECT_FALSE(fs::exists(par / "index.jsonl"));

  // Restart shard 1 (as the Slurm array task again), then merge.
  const pid_t again = spawn(args(par), {{"SLURM_ARRAY_TASK_ID", "11"}, {"SLURM_ARRAY_TASK_MIN", "10"},
                                        {"SLURM_ARRAY_TASK_COUNT", "3"}}, dir_ / "s1b.log");
  ASSERT_EQ(wait_exit(again), 0) << slurp(dir_ / "s1b.log");
  const std::string log = slurp(dir_ / "s1b.log");
  EXPECT_NE(log.find(std::to_string(written) + " already complete"), std::string::npos) << log;
  EXPECT_NE(log.find("1 temporary"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(tmp));
  m = a2f::test::run_cli("dataset merge --out " + q(par));
  ASSERT_EQ(m.status, 0) << m.out;

  // Every (identity, image) exactly once, byte-identical to the single process; the same index.
  const auto want = files_under(ref / "images"), got = files_under(par / "images");
  ASSERT_EQ(want.size(), 15u);
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [name, bytes] : want) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << name;
    EXPECT_TRUE(it->second == bytes) << name << " differs";
  }
  EXPECT_EQ(slurp(par / "index.jsonl"), slurp(ref / "index.jsonl"));
  std::set<std::pair<int, int>> seen;
  std::istringstream in(slurp(par / "index.jsonl"));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(seen.insert({j["id"].get<int>(), j["index"].get<int>()}).second) << line;
  }
  EXPECT_EQ(seen.size(), 15u);
  size_t lines = 0;
  for (int s = 0; s < 3; ++s) lines += count_lines(par / "manifest" / ("shard-0000" + std::to_string(s) + "-of-00003.jsonl"));
  EXPECT_EQ(lines, 15u);  // no duplicate manifest lines either
}

TEST_F(CliDataset, UsageErrors) {
  auto r = a2f::test::run_cli("dataset --per-identity 2 --out " + q(dir_ / "x") + " --shard 3/3");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--shard '3/3'"), std::string::npos) << r.out;
  r = a2f::test::run_cli("dataset --identities 2 --out " + q(dir_ / "x"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--per-identity"), std::string::npos) << r.out;
  r = a2f::test::run_cli("dataset merge --out " + q(dir_ / "nothing"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("dataset.json"), std::string::npos) << r.out;
  r = a2f::test::run_cli("dataset --identities 2 --per-identity 1 --no-score --min-similarity 0.3 --out " + q(dir_ / "x"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--min-similarity"), std::string::npos) << r.out;
}

}  // namespace
