// PyTorch checkpoints in torch.save's zip format (pytorch_model.bin, .pt, .ckpt): <archive>/data.pkl (a
// pickle read by the safe unpickler in io/pickle.h), <archive>/data/<key> (raw little-endian storages,
// 64-byte aligned), <archive>/version, optionally <archive>/byteorder. Tensors are zero-copy views of the
// mmap when contiguous and aligned; non-contiguous ones become contiguous copies. Nested dicts are flattened
// with '.'-joined keys, except that a top-level {"state_dict": {...}} wrapper is unwrapped (its inner keys
// are the names).
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "io/weights.h"

namespace a2f {

// Parses a whole checkpoint held in `buffer` (views keep it alive); `what` names it in errors.
StateDict torch_checkpoint_parse(const std::shared_ptr<Storage>& buffer, const std::string& what);

// True when the buffer starts like a legacy (torch < 1.6, non-zip) torch.save file.
bool torch_legacy_magic(const void* data, size_t size);

}  // namespace a2f
