// `arc2face doctor`: which model files were found where (sizes, dtypes read from safetensors headers,
// sha256 with --checksums, checked against the hub's checksum when the HF cache or a local_dir download
// recorded it), whether an insightface antelopev2 folder would make a Python setup load glintr100 instead of
// arcface.onnx, the CPU/memory/GPU, and what the current setup can run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hub/discovery.h"
#include "hub/hub_config.h"
#include "hub/system_info.h"

namespace a2f::hub {

struct DoctorOptions {
  SearchOptions search;
  bool checksums = false;  // hash every found file (minutes for the 3.4 GB UNet on a slow disk)
  bool build_has_cuda = false;
};

struct DoctorFile {
  std::string path;
  uint64_t size = 0;
  std::string dtype;            // safetensors: "F32 (686 tensors)"; "" otherwise
  std::string sha256;           // with --checksums
  std::string expected_sha256;  // when known
  std::string expected_from;    // where the expectation comes from
  std::string check;            // "ok", "MISMATCH", "" (not checked)
};

struct DoctorRole {
  Role role;
  bool found = false;
  std::string path, source;
  std::vector<DoctorFile> files;
  std::vector<std::string> partial, searched;
};

// One insightface model folder as Python's FaceAnalysis would read it.
struct PythonFolderCheck {
  std::string dir;
  std::vector<std::string> onnx;  // sorted, as insightface globs them
  std::string recognizer;         // the file insightface would use for recognition ("" none)
  std::string level;              // "ok", "warning", "problem"
  std::string message;
};

struct JobVerdict {
  std::string key;  // "from_embedding", "from_photo", "lcm", "controlnet"
  std::string title;
  bool ready = false;
  std::vector<std::string> missing;  // role names
  std::string fetch_command;
};

struct DoctorReport {
  std::vector<DoctorRole> roles;
  std::vector<PythonFolderCheck> python_folders;
  CpuInfo cpu;
  MemoryInfo memory;
  GpuInfo gpu;
  bool build_has_cuda = false;
  std::vector<JobVerdict> jobs;
  std::vector<std::string> notes;                                // hardware and memory remarks
  std::vector<std::pair<std::string, std::string>> environment;  // name -> value ("set" for the token)
};

DoctorReport run_doctor(const DoctorOptions& opts, const SearchEnv& env, const HubConfig& cfg);
std::string doctor_text(const DoctorReport& r);
std::string doctor_json(const DoctorReport& r);

// Helpers (tested on their own).
// "F16 (1 tensors), F32 (2 tensors)"; "INVALID: <why>" when the header does not validate.
std::string safetensors_dtype_summary(const std::string& path);
PythonFolderCheck check_python_folder(const std::string& dir);

}  // namespace a2f::hub
