// arc2face: the command-line front end. Errors from the library are printed as one clear line and give exit
// status 1; usage errors give CLI11's message and status 2 (106..., per CLI11) — never a crash.
#include <cstdio>
#include <exception>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"arc2face.cpp: ID-conditioned face generation (Arc2Face) in native C++"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "arc2face.cpp 0.1.0");
  a2f_cli::register_info(app);
  a2f_cli::register_download(app);
  a2f_cli::register_doctor(app);
  a2f_cli::register_generate(app);
  a2f_cli::register_embed(app);
  a2f_cli::register_serve(app);
  a2f_cli::register_eval(app);
  a2f_cli::register_dataset(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
