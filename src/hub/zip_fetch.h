// Fetches one member of a zip archive on a web server (insightface's antelopev2.zip on GitHub releases) into
// a file. When the server answers Range requests (GitHub's release CDN does) only the end of the archive, its
// central directory and the member's bytes are read (~17 MB instead of 360 MB), resumably; otherwise the
// whole archive is downloaded (resumably) and the member extracted from it. The member's nested folder
// (antelopev2/antelopev2/...) does not matter: it is found by its file name. The result is verified (CRC-32
// and the known sha256) and renamed into place; nothing partial is ever left at the final path.
#pragma once
#include <filesystem>
#include <string>

#include "hub/download.h"
#include "hub/hf_cache.h"

namespace a2f::hub {

struct ZipMemberSource {
  std::string url;           // the archive
  std::string member;        // file name of the member, e.g. "scrfd_10g_bnkps.onnx"
  std::string known_sha256;  // of the member; empty: CRC-32 only
};

// work_dir holds the partial files and the lock (it is created); final_path is written atomically.
FetchResult fetch_zip_member(HttpClient& http, const HubConfig& cfg, const ZipMemberSource& src,
                             const std::filesystem::path& final_path, const std::filesystem::path& work_dir,
                             const ProgressContext& progress = {});

}  // namespace a2f::hub
