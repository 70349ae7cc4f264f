// Text and JSON forms of the doctor report.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hub/doctor.h"
#include "hub/fs_util.h"

namespace a2f::hub {
namespace {

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string cpu_flags(const CpuInfo& c) {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(c.avx2, "AVX2");
  add(c.fma, "FMA");
  add(c.f16c, "F16C");
  add(c.avx512f, "AVX512F");
  add(c.avx512bw, "AVX512BW");
  add(c.avx512vl, "AVX512VL");
  add(c.avx512_bf16, "AVX512_BF16");
  add(c.avx512_fp16, "AVX512_FP16");
  add(c.amx_bf16, "AMX_BF16");
  return s.empty() ? "none of AVX2/AVX-512" : s;
}

std::string gpu_line(const GpuDevice& g) {
  return cat(g.name, " (compute ", g.cc_major, ".", g.cc_minor, ", ", human_bytes(g.memory), ")");
}

}  // namespace

std::string doctor_text(const DoctorReport& r) {
  std::string s = "Model files (search order: flags > Hugging Face cache > $ARC2FACE_MODELS > ./models)\n";
  for (const auto& dr : r.roles) {
    const RoleSpec& spec = role_spec(dr.role);
    if (dr.found) {
      s += cat("  ", pad(spec.name, 11), pad("found", 9), dr.path, "  [", dr.source, "]\n");
      for (const auto& f : dr.files) {
        std::string name = std::filesystem::path(f.path).filename().string();
        s += cat("      ", pad(name, 38), pad(human_bytes(f.size), 10), f.dtype);
        if (!f.sha256.empty()) {
          s += cat("  sha256 ", f.sha256);
          if (!f.check.empty())
            s += cat(" ", f.check == "ok" ? "(verified: " : "(MISMATCH with ", f.expected_from, ")");
        }
        s += "\n";
      }
    } else {
      bool optional = spec.component == Component::ControlNet || spec.component == Component::Lcm;
      s += cat("  ", pad(spec.name, 11), pad(optional ? "absent" : "MISSING", 9), spec.title, "\n");
      for (const auto& p : dr.partial) s += cat("      incomplete folder, missing ", p, "\n");
    }
  }
  if (!r.python_folders.empty()) {
    s += "\nPython setup check (insightface loads sorted(*.onnx), first model per task)\n";
    for (const auto& pf : r.python_folders) {
      std::string files;
      for (const auto& n : pf.onnx) files += (files.empty() ? "" : ", ") + n;
      s += cat("  ", pf.dir, ": ", files.empty() ? "(no .onnx)" : files, "\n    ",
               pf.level == "ok" ? "ok" : pf.level, ": ", pf.message, "\n");
    }
    s += "  (arc2face.cpp itself loads arcface.onnx by its path, whatever else the folder holds)\n";
  }
  s += "\nMachine\n";
  s += cat("  CPU: ", r.cpu.model.empty() ? "unknown model" : r.cpu.model, ", ", r.cpu.logical_cores,
           " logical cores (", r.cpu.usable_cores, " usable), ", cpu_flags(r.cpu), "\n");
  s += cat("  memory: ", human_bytes(r.memory.total), " total, ", human_bytes(r.memory.available),
           " available\n");
  if (r.gpu.devices.empty()) {
    s += cat("  GPU: none (", r.gpu.note, ")\n");
  } else {
    for (size_t i = 0; i < r.gpu.devices.size(); ++i)
      s += cat("  GPU ", i, ": ", gpu_line(r.gpu.devices[i]), "\n");
    s += cat("  NVIDIA driver: CUDA ", r.gpu.driver_version / 1000, ".", (r.gpu.driver_version % 1000) / 10,
             "\n");
  }
  s += cat("  this build: ", r.build_has_cuda ? "CPU + CUDA" : "CPU only (no CUDA)", "\n");
  for (const auto& n : r.notes) s += cat("  note: ", n, "\n");
  s += "\nWhat can run\n";
  for (const auto& j : r.jobs) {
    s += cat("  ", pad(j.title, 32));
    if (j.ready) {
      s += "ready\n";
    } else {
      std::string m;
      for (const auto& x : j.missing) m += (m.empty() ? "" : ", ") + x;
      s += cat("missing ", m, "  ->  ", j.fetch_command, "\n");
    }
  }
  s += "\nEnvironment\n";
  for (const auto& [k, v] : r.environment) s += cat("  ", pad(k, 16), v, "\n");
  return s;
}

std::string doctor_json(const DoctorReport& r) {
  using nlohmann::json;
  json j;
  json roles = json::object();
  for (const auto& dr : r.roles) {
    json files = json::array();
    for (const auto& f : dr.files) {
      json jf = {{"path", f.path}, {"size", f.size}};
      if (!f.dtype.empty()) jf["dtype"] = f.dtype;
      if (!f.sha256.empty()) jf["sha256"] = f.sha256;
      if (!f.expected_sha256.empty()) {
        jf["expected_sha256"] = f.expected_sha256;
        jf["expected_from"] = f.expected_from;
      }
      if (!f.check.empty()) jf["check"] = f.check;
      files.push_back(jf);
    }
    roles[role_spec(dr.role).name] = {{"found", dr.found},     {"path", dr.path},
                                      {"source", dr.source},   {"files", files},
                                      {"partial", dr.partial}, {"searched", dr.searched}};
  }
  j["models"] = roles;
  json pf = json::array();
  for (const auto& p : r.python_folders)
    pf.push_back({{"dir", p.dir},
                  {"onnx", p.onnx},
                  {"recognizer", p.recognizer},
                  {"level", p.level},
                  {"message", p.message}});
  j["python_setup"] = pf;
  j["cpu"] = {{"model", r.cpu.model},
              {"logical_cores", r.cpu.logical_cores},
              {"usable_cores", r.cpu.usable_cores},
              {"avx2", r.cpu.avx2},
              {"fma", r.cpu.fma},
              {"f16c", r.cpu.f16c},
              {"avx512f", r.cpu.avx512f},
              {"avx512bw", r.cpu.avx512bw},
              {"avx512vl", r.cpu.avx512vl},
              {"avx512_bf16", r.cpu.avx512_bf16},
              {"avx512_fp16", r.cpu.avx512_fp16},
              {"amx_bf16", r.cpu.amx_bf16}};
  j["memory"] = {{"total", r.memory.total}, {"available", r.memory.available}};
  json gpus = json::array();
  for (const auto& g : r.gpu.devices)
    gpus.push_back(
        {{"name", g.name}, {"compute_capability", cat(g.cc_major, ".", g.cc_minor)}, {"memory", g.memory}});
  j["gpu"] = {{"driver_loaded", r.gpu.driver_loaded},
              {"driver_version", r.gpu.driver_version},
              {"devices", gpus},
              {"note", r.gpu.note}};
  j["build"] = {{"cuda", r.build_has_cuda}};
  json jobs = json::object();
  for (const auto& jb : r.jobs)
    jobs[jb.key] = {{"title", jb.title},
                    {"ready", jb.ready},
                    {"missing", jb.missing},
                    {"fetch_command", jb.fetch_command}};
  j["can_run"] = jobs;
  j["notes"] = r.notes;
  json envj = json::object();
  for (const auto& [k, v] : r.environment) envj[k] = v;
  j["environment"] = envj;
  return j.dump(2) + "\n";
}

}  // namespace a2f::hub
