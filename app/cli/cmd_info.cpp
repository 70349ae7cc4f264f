// `arc2face info FILE [--json]`: every tensor of a safetensors / PyTorch checkpoint / .npy file with its
// dtype, shape and size, the totals, and the file's metadata.
#include <cstdio>
#include <memory>
#include <string>

#include "arc2face/info.h"
#include "commands.h"

namespace a2f_cli {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "List the tensors of a weight or array file (safetensors, PyTorch .bin/.pt/.ckpt, .npy)");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "the file to inspect")->required();
  cmd->add_flag("--json", *json, "print one JSON object instead of a table");
  cmd->callback([path, json] {
    const arc2face::FileInfo fi = arc2face::inspect_file(*path);
    const std::string text = arc2face::format_file_info(fi, *json);
    std::fwrite(text.data(), 1, text.size(), stdout);
  });
}

}  // namespace a2f_cli
