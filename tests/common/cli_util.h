// Running the built `arc2face` binary (A2F_BIN_DIR) as a user does, for the end-to-end tests.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace a2f::test {

// Single-quoted for the shell (test paths hold no quotes).
// (Built by appends: GCC 12's -Wrestrict misfires on "'" + s + "'" at -O3.)
inline std::string q(const std::filesystem::path& p) {
  std::string s(1, '\'');
  s.append(p.string());
  s.push_back('\'');
  return s;
}

struct CliRun {
  int status = -1;
  std::string out;  // stdout and stderr together
};

inline CliRun run_cli(const std::string& args) {
  const std::string bin = std::string(A2F_BIN_DIR) + "/arc2face";
  CliRun r;
  if (!std::filesystem::exists(bin)) {
    ADD_FAILURE() << bin << " is not built";
    return r;
  }
  std::string cmd = q(bin) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

}  // namespace a2f::test
