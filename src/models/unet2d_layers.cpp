// UNet2DConditionModel::for_each_layer: the Linear / Conv2d layers of the UNet's blocks (LoRA targets).
#include "models/unet2d.h"

namespace a2f {

namespace {

struct Visit {
  const std::function<void(nn::Linear&)>& linear;
  const std::function<void(nn::Conv2d&)>& conv;

  void operator()(nn::Linear& l) const {
    if (l.weight.defined()) linear(l);
  }
  void operator()(nn::Conv2d& c) const {
    if (c.weight.defined()) conv(c);
  }
  void operator()(nn::Attention& a) const {
    (*this)(a.to_q);
    (*this)(a.to_k);
    (*this)(a.to_v);
    (*this)(a.to_out);
  }
  void operator()(ResnetBlock2D& r) const {
    (*this)(r.conv1);
    (*this)(r.time_emb_proj);
    (*this)(r.conv2);
    if (r.conv_shortcut) (*this)(*r.conv_shortcut);
  }
  void operator()(Transformer2DModel& t) const {
    (*this)(t.proj_in);
    for (auto& b : t.transformer_blocks) {
      (*this)(b.attn1);
      (*this)(b.attn2);
      (*this)(b.ff.proj);
      (*this)(b.ff.out);
    }
    (*this)(t.proj_out);
  }
  template <class Block>
  void blocks(Block& b) const {
    for (size_t i = 0; i < b.resnets.size(); ++i) {
      (*this)(b.resnets[i]);
      if (i < b.attentions.size()) (*this)(b.attentions[i]);
    }
  }
};

}  // namespace

void UNet2DConditionModel::for_each_layer(const std::function<void(nn::Linear&)>& on_linear,
                                          const std::function<void(nn::Conv2d&)>& on_conv) {
  const Visit v{on_linear, on_conv};
  v(conv_in_);
  v(time_embedding_.cond_proj);
  v(time_embedding_.linear_1);
  v(time_embedding_.linear_2);
  for (auto& b : down_blocks_) {
    v.blocks(b);
    if (b.downsampler) v(b.downsampler->conv);
  }
  if (mid_cross_) {
    v(mid_cross_->resnets[0]);
    for (size_t i = 0; i < mid_cross_->attentions.size(); ++i) {
      v(mid_cross_->attentions[i]);
      v(mid_cross_->resnets[i + 1]);
    }
  }
  if (mid_plain_) {
    for (auto& r : mid_plain_->resnets) v(r);
    for (auto& a : mid_plain_->attentions) v(a.attn);
  }
  for (auto& b : up_blocks_) {
    v.blocks(b);
    if (b.upsampler) v(b.upsampler->conv);
  }
  v(conv_out_);
}

}  // namespace a2f
