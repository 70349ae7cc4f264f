// The ControlNet condition image as diffusers 0.29.2 StableDiffusionControlNetPipeline.prepare_image builds
// it from a PIL image (pipelines/controlnet/pipeline_controlnet.py, image_processor.py VaeImageProcessor with
// do_normalize=False): PIL Image.resize((width, height), LANCZOS) (the processor's default `resample`; a copy
// when the size already matches), RGB, np.float32 / 255, NCHW. No normalisation to [-1, 1].
#pragma once
#include "core/tensor.h"
#include "io/image.h"

namespace a2f {

// Pillow 9.4's Image.resize(size, Image.LANCZOS) for 8-bit images of any channel count: separable two-pass
// convolution (horizontal first), support 3 x max(scale, 1), coefficients normalised per output pixel and
// rounded to 22-bit fixed point, each pass rounded and clipped to 8 bits. Bit-exact with Pillow.
Image8 pil_resize_lanczos(const Image8& img, int width, int height);

// rgb (3 channels) -> [1, 3, height, width] f32 in [0, 1], resized as above.
Tensor control_image_tensor(const Image8& rgb, int width, int height);

}  // namespace a2f
