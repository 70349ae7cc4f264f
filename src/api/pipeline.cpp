// arc2face::Pipeline: the public face of pipeline/generate. Turns a2f::Error into arc2face::Error at the
// boundary and serialises generate() calls.
#include <chrono>
#include <filesystem>
#include <cmath>
#include <mutex>
#include <random>

#include "api/backend_factory.h"
#include "arc2face/arc2face.h"
#include "core/log.h"
#include "io/image.h"
#include "io/npy.h"
#include "pipeline/generate.h"

namespace arc2face {
namespace {

template <class F>
auto api_call(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const a2f::GenerationCancelled&) {
    throw Cancelled();
  } catch (const Error&) {
    throw;
  } catch (const a2f::Error& e) {
    throw Error(e.what());
  } catch (const std::bad_alloc&) {
    throw Error("out of memory");
  }
}

// What a request adds with LCM-LoRA / ControlNet, for the PNG parameters.
std::string format_extras(const GenerateRequest& r) {
  std::string s;
  if (r.lcm) s += ", LCM-LoRA: on";
  if (!r.control_rgb.empty()) {
    char c[32];
    std::snprintf(c, sizeof c, "%g", static_cast<double>(r.control_scale));
    s += a2f::cat(", ControlNet: pose ", r.control_width, "x", r.control_height, ", Control scale: ", c);
  }
  return s;
}

std::string format_parameters(const GenerateRequest& r, int64_t seed, int index, const PipelineOptions& o) {
  char g[32];
  std::snprintf(g, sizeof g, "%g", static_cast<double>(r.guidance));
  return a2f::cat("Arc2Face ID-conditioned image; Steps: ", r.steps,
                  ", Sampler: ", r.lcm ? "lcm" : r.scheduler, format_extras(r), ", CFG scale: ", g,
                  ", Seed: ", seed, r.per_image_seeds ? "" : a2f::cat(", Batch index: ", index),
                  ", Images: ", r.num_images, ", Size: ", r.width, "x", r.height, ", Dtype: ", o.dtype,
                  r.latents.empty() ? "" : ", Latents: given", ", Generator: torch cpu, arc2face.cpp 0.1.0");
}

class PipelineImpl final : public Pipeline {
 public:
  explicit PipelineImpl(const PipelineOptions& o) : opts_(o) {
    a2f::ModelDirs dirs = a2f::ModelDirs::from_roots(o.models_dir, o.base_dir);
    auto pick = [](std::filesystem::path& dst, const std::string& explicit_dir, const std::string& root,
                   const char* what) {
      if (!explicit_dir.empty()) {
        dst = explicit_dir;
      } else {
        A2F_CHECK(!root.empty(), "no folder given for the ", what);
      }
    };
    pick(dirs.unet, o.unet_dir, o.models_dir, "Arc2Face UNet (--models DIR holding arc2face/ and encoder/)");
    pick(dirs.encoder, o.encoder_dir, o.models_dir, "Arc2Face encoder (--models DIR holding arc2face/ and encoder/)");
    pick(dirs.vae, o.vae_dir, o.base_dir, "SD1.5 VAE (--base DIR holding vae/, tokenizer/, scheduler/)");
    pick(dirs.tokenizer, o.tokenizer_dir, o.base_dir, "SD1.5 tokenizer (--base DIR holding vae/, tokenizer/, ...)");
    pick(dirs.scheduler, o.scheduler_dir, o.base_dir, "SD1.5 scheduler (--base DIR holding vae/, scheduler/, ...)");
    backend_ = a2f::make_backend(o.backend, o.threads);
    const a2f::DType dt = a2f::dtype_parse(o.dtype);
    A2F_CHECK(dt == a2f::DType::F32 || dt == a2f::DType::BF16, "dtype ", o.dtype,
              " is not supported on ", o.backend, " (use fp32 or bf16)");
    const auto t0 = std::chrono::steady_clock::now();
    dirs.controlnet = o.controlnet_dir;
    dirs.lcm_lora = o.lcm_lora;
    models_ = a2f::DiffusionModels::load(dirs, *backend_, dt);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    a2f::log_info("models loaded in ", secs, " s (", backend_->name(), ", ", o.dtype, ")");
  }

  const PipelineOptions& options() const override { return opts_; }

  std::vector<GeneratedImage> generate(const GenerateRequest& r, const ProgressFn& progress) override {
    std::lock_guard<std::mutex> lock(mu_);
    return api_call([&] { return run(r, progress); });
  }

 private:
  std::vector<GeneratedImage> run(const GenerateRequest& r, const ProgressFn& progress) {
    a2f::GenerationParams p;
    if (r.id_embeddings.empty()) {
      A2F_CHECK(r.id_embedding.size() == 512, "an ID embedding has 512 values; got ", r.id_embedding.size());
      p.id_embeddings = a2f::Tensor::from_data({1, 512}, r.id_embedding);
    } else {
      A2F_CHECK(r.num_images >= 1 && r.id_embeddings.size() == size_t(r.num_images) * 512, "id_embeddings: ",
                r.num_images, " images need ", int64_t(r.num_images) * 512, " values (one 512-d row each); got ",
                r.id_embeddings.size());
      for (size_t i = 0; i < r.id_embeddings.size(); ++i)
        A2F_CHECK(std::isfinite(r.id_embeddings[i]), "id_embeddings: value ", i, " is not finite");
      p.id_embeddings = a2f::Tensor::from_data({r.num_images, 512}, r.id_embeddings);
    }
    p.num_images = r.num_images;
    p.steps = r.steps;
    p.guidance = r.guidance;
    p.scheduler = r.scheduler;
    int64_t seed = r.seed;
    if (seed < 0) seed = static_cast<int64_t>(std::random_device{}() & 0x7fffffffu);  // the demo's range
    p.seed = static_cast<uint64_t>(seed);
    p.per_image_seeds = r.per_image_seeds;
    p.width = r.width;
    p.height = r.height;
    if (!r.latents.empty()) {
      const int64_t f = models_.vae->downscale_factor(), c = models_.unet->config().in_channels;
      A2F_CHECK(r.width % f == 0 && r.height % f == 0, "width and height must be multiples of ", f);
      const a2f::Shape shape{r.num_images, c, r.height / f, r.width / f};
      A2F_CHECK(static_cast<int64_t>(r.latents.size()) == a2f::shape_numel(shape), "the latents have ",
                r.latents.size(), " values; ", r.num_images, " images of ", r.width, "x", r.height, " need ",
                a2f::shape_str(shape));
      p.latents = a2f::Tensor::from_data(shape, r.latents);
    }
    set_lcm_and_control(r, p);
    p.dump_dir = r.dump_dir;
    if (progress) {
      p.on_stage = [&](const a2f::GenerationStage& s) { return progress(Progress{s.stage, s.step, s.total}); };
    }
    a2f::GenerationResult res = a2f::generate_images(models_, p);
    auto rgb = a2f::images_to_rgb8(res.images);
    std::vector<GeneratedImage> out;
    for (size_t i = 0; i < rgb.size(); ++i) {
      GeneratedImage img;
      img.width = static_cast<int>(res.images.dim(2));
      img.height = static_cast<int>(res.images.dim(1));
      img.rgb = std::move(rgb[i]);
      img.seed = static_cast<int64_t>(res.seeds[i]);
      img.index = static_cast<int>(i);
      img.parameters = format_parameters(r, img.seed, img.index, opts_);
      out.push_back(std::move(img));
    }
    return out;
  }

  // GenerateRequest::lcm (LoRA on + the lcm scheduler, for this request) and the ControlNet condition.
  void set_lcm_and_control(const GenerateRequest& r, a2f::GenerationParams& p) const {
    if (r.lcm) {
      A2F_CHECK(models_.lcm_lora, "this request asks for LCM-LoRA, but the pipeline was created without one ",
                "(PipelineOptions::lcm_lora, --lcm-lora FILE)");
      A2F_CHECK(r.scheduler == "lcm" || r.scheduler == GenerateRequest{}.scheduler,
                "LCM-LoRA runs with the lcm ", "scheduler; this request asks for '", r.scheduler, "'");
      p.lcm_lora = true;
      p.scheduler = "lcm";
    }
    if (r.control_rgb.empty()) return;
    A2F_CHECK(models_.controlnet, "this request has a pose image, but the pipeline was created without a ",
              "ControlNet (PipelineOptions::controlnet_dir, --controlnet DIR)");
    A2F_CHECK(
        r.control_width > 0 && r.control_height > 0 && r.control_width <= 8192 && r.control_height <= 8192,
        "the pose image size ", r.control_width, "x", r.control_height, " is not valid");
    A2F_CHECK(r.control_rgb.size() == size_t(r.control_width) * size_t(r.control_height) * 3,
              "the pose image has ", r.control_rgb.size(), " bytes; ", r.control_width, "x", r.control_height,
              " RGB needs ", size_t(r.control_width) * size_t(r.control_height) * 3);
    p.control_image = a2f::Image8{r.control_width, r.control_height, 3, r.control_rgb};
    p.control_scale = r.control_scale;
  }

  PipelineOptions opts_;
  std::unique_ptr<a2f::Backend> backend_;
  a2f::DiffusionModels models_;
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<Pipeline> Pipeline::create(const PipelineOptions& options) {
  return api_call([&]() -> std::unique_ptr<Pipeline> { return std::make_unique<PipelineImpl>(options); });
}

void write_png(const std::string& path, const GeneratedImage& image) {
  api_call([&] {
    A2F_CHECK(image.rgb.size() == size_t(image.width) * image.height * 3, "write_png: image buffer size mismatch");
    a2f::png_write(path, image.rgb.data(), image.width, image.height, {{"parameters", image.parameters}});
    return 0;
  });
}

std::vector<uint8_t> encode_png(const GeneratedImage& image) {
  return api_call([&] {
    A2F_CHECK(image.rgb.size() == size_t(image.width) * image.height * 3, "encode_png: image buffer size mismatch");
    return a2f::png_encode(image.rgb.data(), image.width, image.height, 3, {{"parameters", image.parameters}});
  });
}

RgbImage read_image_rgb(const std::string& path) {
  return api_call([&] {
    a2f::Image8 img = a2f::image_read(path);
    return RgbImage{img.width, img.height, std::move(img.pixels)};
  });
}

RgbImage decode_image_rgb(const void* data, size_t size) {
  return api_call([&] {
    A2F_CHECK(data != nullptr && size > 0, "no image bytes given (an empty upload?)");
    A2F_CHECK(a2f::image_sniff(data, size) != a2f::ImageFormat::Unknown, "the ", size,
              " bytes given are not a JPEG, PNG or WebP image");
    a2f::Image8 img = a2f::image_decode(data, size, "from memory");
    return RgbImage{img.width, img.height, std::move(img.pixels)};
  });
}

std::vector<float> read_float_npy(const std::string& path, std::vector<int64_t>* shape) {
  return api_call([&] {
    a2f::Tensor t = a2f::npy_read(path);
    A2F_CHECK(a2f::dtype_is_float(t.dtype()), path, ": expected a float array, got ", a2f::dtype_name(t.dtype()));
    if (shape) *shape = t.shape();
    return t.to_vector();
  });
}

std::vector<float> read_embedding_npy(const std::string& path) {
  return api_call([&] {
    a2f::Tensor t = a2f::npy_read(path);
    A2F_CHECK(t.dtype() == a2f::DType::F32 || t.dtype() == a2f::DType::F64 || t.dtype() == a2f::DType::F16,
              path, ": an ID embedding must be a float array, got ", a2f::dtype_name(t.dtype()));
    A2F_CHECK(t.numel() == 512 && (t.ndim() == 1 || (t.ndim() == 2 && t.dim(0) == 1)), path,
              ": an ID embedding must have shape [512] or [1, 512], got ", a2f::shape_str(t.shape()));
    std::vector<float> v = t.to_vector();
    for (size_t i = 0; i < v.size(); ++i) A2F_CHECK(std::isfinite(v[i]), path, ": value ", i, " is not finite");
    return v;
  });
}

}  // namespace arc2face
