// A LoRA side path attached to a Linear or Conv2d and run unmerged, as PEFT 0.11.1 runs an adapter that was
// not fused (peft/tuners/lora/layer.py, Linear.forward / Conv2d.forward):
//   y = base(x) + lora_B(lora_A(x)) * scaling
// lora_A is a Linear [r, in] (for a Conv2d: a conv [r, in, k, k] with the base conv's stride and padding),
// lora_B a Linear [out, r] (for a Conv2d: a 1x1 conv [out, r, 1, 1]). Layers hold it through a shared pointer
// that is null when no LoRA is attached (models/lora.h attaches and detaches it).
#pragma once
#include "core/tensor.h"

namespace a2f::nn {

struct LoraBranch {
  Tensor down;         // lora_A weight, prepared in the compute dtype
  Tensor up;           // lora_B weight, prepared in the compute dtype
  float scale = 1.0f;  // scaling = lora_alpha / r (times the adapter weight)
};

}  // namespace a2f::nn
