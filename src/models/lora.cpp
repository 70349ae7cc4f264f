// diffusers 0.29.2 + PEFT 0.11.1 LoRA loading and merging; see lora.h.
#include "models/lora.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "core/log.h"

namespace a2f {

namespace {

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
bool starts(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}
bool ends(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Python's str.replace(from, to): every non-overlapping occurrence, left to right.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// Python's s.split(sep)[0].
std::string before(const std::string& s, const std::string& sep) {
  const size_t p = s.find(sep);
  return p == std::string::npos ? s : s.substr(0, p);
}

// re.sub(r"\.\d+(?=\D*$)", "", s, count=1): drops the last run of digits when a '.' precedes it.
std::string drop_last_number(const std::string& s) {
  size_t end = s.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(s[end - 1]))) --end;
  if (end == 0) return s;
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(s[begin - 1]))) --begin;
  if (begin == 0 || s[begin - 1] != '.') return s;
  return s.substr(0, begin - 1) + s.substr(end);
}

// UNET_TO_DIFFUSERS in diffusers' order; the first pattern found is replaced, then the search stops.
const std::pair<const char*, const char*> kUnetToPeft[] = {
    {".to_out_lora.up", ".to_out.0.lora_B"},
    {".to_out_lora.down", ".to_out.0.lora_A"},
    {".to_q_lora.down", ".to_q.lora_A"},
    {".to_q_lora.up", ".to_q.lora_B"},
    {".to_k_lora.down", ".to_k.lora_A"},
    {".to_k_lora.up", ".to_k.lora_B"},
    {".to_v_lora.down", ".to_v.lora_A"},
    {".to_v_lora.up", ".to_v.lora_B"},
    {".lora.up", ".lora_B"},
    {".lora.down", ".lora_A"},
    {".to_out.lora_magnitude_vector", ".to_out.0.lora_magnitude_vector"},
};

double scalar_value(const Tensor& t, const std::string& what, const std::string& name) {
  A2F_CHECK(t.numel() == 1 && dtype_is_float(t.dtype()), what, ": '", name, "' must be one float, got ",
            t.desc());
  return static_cast<double>(t.item_f32(0));
}

// Python's Counter(values).most_common()[0][0]: the most frequent value, ties to the first seen.
double most_common(const std::vector<double>& values) {
  std::vector<std::pair<double, int>> counts;
  for (double v : values) {
    auto it = std::find_if(counts.begin(), counts.end(), [&](auto& c) { return c.first == v; });
    if (it == counts.end())
      counts.push_back({v, 1});
    else
      ++it->second;
  }
  auto best = counts.begin();
  for (auto it = counts.begin(); it != counts.end(); ++it)
    if (it->second > best->second) best = it;
  return best->first;
}

// An ordered state dict (diffusers keeps insertion order; safetensors.load_file yields sorted keys).
using Ordered = std::vector<std::pair<std::string, Tensor>>;

struct Converted {
  Ordered tensors;                                     // diffusers names
  std::vector<std::pair<std::string, double>> alphas;  // network_alphas, in insertion order
  std::vector<std::string> ignored;
};

// _convert_non_diffusers_lora_to_diffusers for the UNet part (text-encoder parts are set aside).
Converted convert_kohya(const StateDict& sd, const std::string& what) {
  Converted out;
  std::map<std::string, bool> taken;
  for (const auto& [key, t] : sd) {
    if (has(key, "dora_scale")) fail(what, ": '", key, "': DoRA LoRAs (dora_scale) are not supported");
  }
  for (const auto& [key, t] : sd) {
    if (!ends(key, "lora_down.weight")) continue;
    const std::string lora_name = before(key, ".");
    const std::string up_key = lora_name + ".lora_up.weight", alpha_key = lora_name + ".alpha";
    std::string diffusers_name;
    if (starts(lora_name, "lora_unet_")) {
      diffusers_name = lora_kohya_unet_key(key);
      auto up = sd.find(up_key);
      A2F_CHECK(up != sd.end(), what, ": '", key, "' has no matching '", up_key, "'");
      out.tensors.push_back({"unet." + diffusers_name, t});
      out.tensors.push_back({"unet." + replace_all(diffusers_name, ".down.", ".up."), up->second});
      taken[key] = taken[up_key] = true;
    } else if (starts(lora_name, "lora_te_") || starts(lora_name, "lora_te1_") ||
               starts(lora_name, "lora_te2_")) {
      for (const auto& k : {key, up_key, alpha_key})
        if (sd.count(k)) {
          out.ignored.push_back(k);
          taken[k] = true;
        }
      continue;
    } else {
      continue;  // left over: reported below, as diffusers raises
    }
    if (auto a = sd.find(alpha_key); a != sd.end()) {
      // _get_alpha_name: "unet." + diffusers_name.split(".lora.")[0] + ".alpha"
      out.alphas.push_back(
          {"unet." + before(diffusers_name, ".lora.") + ".alpha", scalar_value(a->second, what, alpha_key)});
      taken[alpha_key] = true;
    }
  }
  std::string left;
  int n = 0;
  for (const auto& [key, t] : sd)
    if (!taken.count(key) && n++ < 8) left += (left.empty() ? "" : ", ") + key;
  A2F_CHECK(left.empty(), what,
            ": these keys of a kohya-style LoRA do not convert (diffusers raises on them ", "too): ", left);
  return out;
}

std::string detect_format(const std::vector<std::string>& keys, bool kohya) {
  if (kohya) return "kohya";
  bool old = false, diffusers = false;
  for (const auto& k : keys) {
    old = old || has(k, "_lora.down") || has(k, "_lora.up");
    diffusers = diffusers || has(k, ".lora.down") || has(k, ".lora.up");
  }
  return old ? "diffusers-old" : diffusers ? "diffusers" : "peft";
}

}  // namespace

std::string lora_kohya_unet_key(const std::string& key) {
  std::string n = replace_all(replace_all(key, "lora_unet_", ""), "_", ".");
  const std::pair<const char*, const char*> common[] = {
      {"input.blocks", "down_blocks"},
      {"down.blocks", "down_blocks"},
      {"middle.block", "mid_block"},
      {"mid.block", "mid_block"},
      {"output.blocks", "up_blocks"},
      {"up.blocks", "up_blocks"},
      {"transformer.blocks", "transformer_blocks"},
      {"to.q.lora", "to_q_lora"},
      {"to.k.lora", "to_k_lora"},
      {"to.v.lora", "to_v_lora"},
      {"to.out.0.lora", "to_out_lora"},
      {"proj.in", "proj_in"},
      {"proj.out", "proj_out"},
      {"emb.layers", "time_emb_proj"},
  };
  for (const auto& [from, to] : common) n = replace_all(n, from, to);
  // SDXL-specific conversions.
  if (has(n, "emb") && !has(n, "time.emb.proj")) n = drop_last_number(n);
  if (has(n, ".in.")) n = replace_all(n, "in.layers.2", "conv1");
  if (has(n, ".out.")) n = replace_all(n, "out.layers.3", "conv2");
  if (has(n, "downsamplers") || has(n, "upsamplers")) n = replace_all(n, "op", "conv");
  if (has(n, "skip")) n = replace_all(n, "skip.connection", "conv_shortcut");
  // LyCORIS-specific conversions.
  if (has(n, "time.emb.proj")) n = replace_all(n, "time.emb.proj", "time_emb_proj");
  if (has(n, "conv.shortcut")) n = replace_all(n, "conv.shortcut", "conv_shortcut");
  // General conversions.
  if (has(n, "transformer_blocks") && (has(n, "attn1") || has(n, "attn2"))) {
    n = replace_all(n, "attn1", "attn1.processor");
    n = replace_all(n, "attn2", "attn2.processor");
  }
  return n;
}

std::string lora_unet_key_to_peft(const std::string& key) {
  std::string k = replace_all(key, ".processor.", ".");
  for (const auto& [pattern, repl] : kUnetToPeft) {
    if (has(k, pattern)) {
      k = replace_all(k, pattern, repl);
      break;
    }
  }
  return k;
}

LoraWeights lora_load(const std::filesystem::path& file) {
  LoraWeights w = lora_from_state_dict(load_state_dict(file), file.string());
  w.file = file.string();
  return w;
}

LoraWeights lora_from_state_dict(const StateDict& sd, const std::string& what) {
  A2F_CHECK(!sd.empty(), what, ": the LoRA file holds no tensors");
  LoraWeights out;
  out.file = what;

  // lora_state_dict: kohya files are converted; every other layout is used as it is.
  const bool kohya = std::all_of(sd.begin(), sd.end(), [](const auto& kv) {
    const std::string& k = kv.first;
    return starts(k, "lora_te_") || starts(k, "lora_unet_") || starts(k, "lora_te1_") ||
           starts(k, "lora_te2_");
  });
  Converted conv;
  if (kohya) {
    conv = convert_kohya(sd, what);
  } else {
    for (const auto& kv : sd) conv.tensors.push_back(kv);
  }
  std::vector<std::string> keys;
  for (const auto& [k, t] : conv.tensors) keys.push_back(k);
  out.format = detect_format(keys, kohya);

  // load_lora_weights: every key must be a LoRA key; load_attn_procs: no custom diffusion, no DoRA here.
  for (const auto& k : keys) {
    A2F_CHECK(has(k, "lora") || has(k, "dora_scale"), what, ": '", k,
              "' is not a LoRA tensor (diffusers: \"Invalid LoRA checkpoint\")");
    A2F_CHECK(!has(k, "custom_diffusion"), what, ": custom-diffusion weights are not supported ('", k, "')");
    A2F_CHECK(!has(k, "dora_scale") && !has(k, "lora_magnitude_vector"), what, ": '", k,
              "': DoRA LoRAs are not supported");
  }

  // _process_lora: the "unet"-prefixed part (or everything, for legacy files without prefixes).
  // load_lora_into_unet skips the UNet when every key is a text-encoder key.
  Ordered unet;
  bool any_unet = false, only_te = true;
  for (const auto& [k, t] : conv.tensors) {
    any_unet = any_unet || starts(k, "unet");
    only_te = only_te && starts(k, "text_encoder");
  }
  for (const auto& [k, t] : conv.tensors) {
    if ((any_unet && !starts(k, "unet")) || only_te) {
      out.ignored.push_back(k);
      continue;
    }
    unet.push_back({lora_unet_key_to_peft(any_unet ? replace_all(k, "unet.", "") : k), t});
  }
  for (const auto& k : conv.ignored) out.ignored.push_back(k);
  A2F_CHECK(!unet.empty(), what, ": the LoRA has no UNet weights (only ", out.ignored.size(),
            " text-encoder tensors, which arc2face.cpp does not apply)");
  std::vector<std::pair<std::string, double>> alphas;  // module -> alpha
  for (const auto& [k, a] : conv.alphas) {
    if (!starts(k, "unet")) continue;
    // get_peft_kwargs' alpha_pattern key: k.split(".lora_A.")[0] with ".alpha" removed.
    alphas.push_back(
        {replace_all(before(lora_unet_key_to_peft(replace_all(k, "unet.", "")), ".lora_A."), ".alpha", ""),
         a});
  }

  // PEFT keys: <module>.lora_A.weight / <module>.lora_B.weight.
  std::map<std::string, LoraModuleWeights> modules;
  std::vector<int64_t> ranks;  // per lora_B key, in key order (get_peft_kwargs' rank dict)
  for (const auto& [k, t] : unet) {
    const std::string module = before(k, ".lora");
    LoraModuleWeights& m = modules[module];
    m.module = module;
    if (k == module + ".lora_A.weight") {
      m.down = t;
    } else if (k == module + ".lora_B.weight") {
      A2F_CHECK(t.ndim() == 2 || t.ndim() == 4, what, ": '", k, "' must be 2-D or 4-D, got ", t.desc());
      m.up = t;
      ranks.push_back(t.dim(1));
    } else {
      fail(what, ": LoRA key '", k, "' (module '", module,
           "') is not in a layout diffusers 0.29.2 loads into the ",
           "UNet (expected <module>.lora_A.weight / .lora_B.weight after its renaming)");
    }
  }

  // get_peft_kwargs: lora_alpha = the alphas' most common value, or the first rank when there are none;
  // alpha_pattern gives each module with a different alpha its own.
  double default_alpha = ranks.empty() ? 0.0 : static_cast<double>(ranks.front());
  std::map<std::string, double> own_alpha;
  if (!alphas.empty()) {
    std::vector<double> values;
    for (const auto& [m, a] : alphas) {
      values.push_back(a);
      own_alpha[m] = a;
    }
    default_alpha = most_common(values);
  }
  for (auto& [name, m] : modules) {
    A2F_CHECK(m.down.defined() && m.up.defined(), what, ": LoRA module '", name, "' has ",
              m.down.defined() ? "lora_A (down) but no lora_B (up)" : "lora_B (up) but no lora_A (down)");
    A2F_CHECK(m.down.ndim() == m.up.ndim() && (m.down.ndim() == 2 || m.down.ndim() == 4), what,
              ": LoRA module '", name, "': lora_A ", shape_str(m.down.shape()), " and lora_B ",
              shape_str(m.up.shape()), " must both be matrices or both conv kernels");
    A2F_CHECK(m.down.dim(0) == m.up.dim(1) && m.down.dim(0) > 0, what, ": LoRA module '", name, "': lora_A ",
              shape_str(m.down.shape()), " and lora_B ", shape_str(m.up.shape()), " disagree on the rank");
    m.rank = m.down.dim(0);
    auto a = own_alpha.find(name);
    m.alpha = a != own_alpha.end() ? a->second : default_alpha;
    out.unet.push_back(m);
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------
// adapter

namespace {

// lora_A / lora_B as matrices for a layer of weight shape `ws` ([out, in] or [out, in, k, k]); throws on a
// shape PEFT could not load into that layer.
void check_shapes(const LoraModuleWeights& m, const Shape& ws, bool is_conv, const std::string& file) {
  const int64_t out = ws[0], in = ws[1], r = m.rank;
  const Shape& a = m.down.shape();
  const Shape& b = m.up.shape();
  bool ok;
  if (is_conv) {
    ok = a == Shape{r, in, ws[2], ws[3]} && b == Shape{out, r, 1, 1};
  } else {  // Linear, or a 1x1 conv held as one (proj_in / proj_out)
    ok = (a == Shape{r, in} || a == Shape{r, in, 1, 1}) && (b == Shape{out, r} || b == Shape{out, r, 1, 1});
  }
  A2F_CHECK(ok, file, ": LoRA module '", m.module, "' has lora_A ", shape_str(a), " and lora_B ",
            shape_str(b), ", which do not fit the UNet layer's weight ", shape_str(ws),
            is_conv ? " (a conv: lora_A [r, in, k, k], "
                      "lora_B [out, r, 1, 1])"
                    : " (lora_A [r, in], lora_B [out, r])");
}

}  // namespace

LoraAdapter::LoraAdapter(UNet2DConditionModel& unet, LoraWeights weights, float scale, LoraMode mode)
    : be_(unet.backend()), dtype_(unet.dtype()), weights_(std::move(weights)), scale_(scale), mode_(mode) {
  std::map<std::string, Target> layers;
  auto module_of = [](const Tensor& w) { return before(w.name(), ".weight"); };
  unet.for_each_layer([&](nn::Linear& l) { layers[module_of(l.weight)].linear = &l; },
                      [&](nn::Conv2d& c) { layers[module_of(c.weight)].conv = &c; });
  for (const auto& m : weights_.unet) {
    auto it = layers.find(m.module);
    if (it == layers.end()) {
      unmatched_.push_back(m.module);
      continue;
    }
    Target t = it->second;
    t.w = &m;
    t.base = t.weight();
    check_shapes(m, t.base.shape(), t.conv != nullptr, weights_.file);
    targets_.push_back(t);
  }
  A2F_CHECK(!targets_.empty(), weights_.file, ": none of the LoRA's ", weights_.unet.size(),
            " modules exists in the UNet (first: '", weights_.unet.front().module,
            "'); is it a LoRA for another model family (e.g. SDXL)?");
  if (!unmatched_.empty()) {
    std::string list;
    for (size_t i = 0; i < unmatched_.size() && i < 8; ++i) list += (i ? ", " : "") + unmatched_[i];
    log_warn(weights_.file, ": ", unmatched_.size(),
             " LoRA module(s) are not in the UNet and are ignored (as ",
             "diffusers ignores unexpected keys): ", list);
  }
  if (!weights_.ignored.empty())
    log_warn(weights_.file, ": ", weights_.ignored.size(),
             " text-encoder LoRA tensor(s) are not applied (only the ", "UNet is adapted), e.g. ",
             weights_.ignored.front());
  log_info("LoRA ", weights_.file, " (", weights_.format, "): ", targets_.size(), " UNet layers, rank ",
           targets_.front().w->rank, ", scale ", targets_.front().w->scale() * scale_, ", ",
           mode_ == LoraMode::Merged ? "merged on first use" : "unmerged side paths");
}

LoraAdapter::~LoraAdapter() {
  set_enabled(false);
}

void LoraAdapter::merge(Target& t) {
  const Tensor base = be_.to_host(t.base);
  const int64_t out = base.dim(0), cols = base.numel() / out, r = t.w->rank;
  // delta = (B @ A) * scaling; W' = W + delta (PEFT get_delta_weight + merge), in f32.
  Tensor up = be_.to_device(t.w->up.to(DType::F32).contiguous().reshape({out, r}));       // [out, r]
  Tensor down = be_.to_device(t.w->down.to(DType::F32).contiguous().reshape({r, cols}));  // [r, in*k*k]
  Tensor delta = be_.matmul(up, down);                                                    // [out, in*k*k]
  delta = be_.scale(delta, static_cast<float>(t.w->scale() * scale_));                    // [out, in*k*k]
  Tensor merged = be_.add(be_.to_device(base.to(DType::F32).contiguous().reshape({out, cols})), delta);
  merged = be_.prepare_dense_weight(be_.to_host(merged).reshape(base.shape()), dtype_);  // [layer shape]
  merged.set_name(t.base.name());
  t.merged = merged;
}

void LoraAdapter::set_enabled(bool on) {
  if (on == enabled_) return;
  if (mode_ == LoraMode::Merged) {
    if (on && !targets_.front().merged.defined())
      log_info("merging the LoRA into a copy of ", targets_.size(), " UNet layers (first use)");
    if (on)
      for (auto& t : targets_)
        if (!t.merged.defined()) merge(t);
    for (auto& t : targets_) t.weight() = on ? t.merged : t.base;
  } else {
    for (auto& t : targets_) {
      if (on && !t.branch) {
        const LoraModuleWeights& m = *t.w;
        const DType dt = dtype_;
        const bool conv = t.conv != nullptr;
        auto b = std::make_shared<nn::LoraBranch>();
        Tensor down = m.down.to(DType::F32).contiguous();
        Tensor up = m.up.to(DType::F32).contiguous();
        if (!conv) {
          down = down.reshape({m.rank, down.numel() / m.rank});  // [r, in]
          up = up.reshape({up.dim(0), m.rank});                  // [out, r]
        }
        b->down = be_.prepare_dense_weight(be_.to_device(down), dt);
        b->up = be_.prepare_dense_weight(be_.to_device(up), dt);
        b->scale = static_cast<float>(m.scale() * scale_);
        t.branch = b;
      }
      (t.linear ? t.linear->lora : t.conv->lora) = on ? t.branch : nullptr;
    }
  }
  enabled_ = on;
}

Tensor LoraAdapter::merged_weight(const std::string& module) {
  for (auto& t : targets_) {
    if (t.w->module != module) continue;
    if (!t.merged.defined()) merge(t);
    return be_.to_host(t.merged).to(DType::F32);
  }
  fail(weights_.file, ": the LoRA does not adapt module '", module, "'");
}

}  // namespace a2f
