// Each subcommand of the `arc2face` binary lives in its own cmd_<name>.cpp and registers itself here.
// The CLI is a client of the public API (include/arc2face) only.
#pragma once
#include <CLI/CLI.hpp>

namespace a2f_cli {

// (one line per subcommand: void register_<name>(CLI::App& app);)
void register_info(CLI::App& app);
void register_download(CLI::App& app);
void register_doctor(CLI::App& app);
void register_generate(CLI::App& app);
void register_embed(CLI::App& app);
void register_serve(CLI::App& app);
void register_eval(CLI::App& app);
void register_dataset(CLI::App& app);

}  // namespace a2f_cli
