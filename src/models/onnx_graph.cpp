// Mirrors no Python class: this is the execution of an ONNX graph as onnxruntime 1.x runs insightface's
// models (insightface 0.7.3 python-package/insightface/model_zoo/{scrfd,arcface_onnx}.py call
// onnxruntime.InferenceSession.run with the graph's inputs and outputs in graph order).
#include "models/onnx_graph.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "models/onnx_ops.h"

namespace a2f {

namespace {
constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 18;
}  // namespace

struct OnnxGraph::Impl {
  Backend* be = nullptr;
  OnnxGraphOptions opt;
  std::string source;
  int64_t opset = 0;
  std::vector<OnnxValueInfo> inputs, outputs;
  std::vector<std::string> node_names;
  std::map<std::string, int> op_counts;

  struct Step {
    onnx_ops::Kernel kernel;
    std::vector<int> in;       // value ids; -1 for an omitted optional input
    std::vector<int> out;      // value ids; -1 for an unused optional output
    std::vector<int> release;  // values whose last use is this step
    std::string where;
  };
  std::vector<Step> steps;
  std::vector<std::string> value_names;
  std::vector<Tensor> const_values;  // by id: backend-side constants (initializers, folded values)
  std::vector<int> input_ids, output_ids;
  std::function<void(const std::string&, const Tensor&)> dump;

  int id_of(std::map<std::string, int>& ids, const std::string& name) {
    auto it = ids.find(name);
    if (it != ids.end()) return it->second;
    const int id = static_cast<int>(value_names.size());
    ids.emplace(name, id);
    value_names.push_back(name);
    const_values.emplace_back();
    return id;
  }

  void compile(OnnxModel& m);
};

void OnnxGraph::Impl::compile(OnnxModel& m) {
  const std::string& what = m.source;
  A2F_CHECK(m.opset >= kMinOpset && m.opset <= kMaxOpset, what, ": opset ", m.opset,
            " is not supported (supported: ", kMinOpset, " to ", kMaxOpset, ")");
  A2F_CHECK(!m.outputs.empty(), what, ": the graph has no outputs");

  std::map<std::string, int> ids;
  std::map<int, Tensor> host_consts;  // by id: host values known at load time
  for (auto& [name, t] : m.initializers) host_consts[id_of(ids, name)] = t;
  std::vector<bool> defined;
  auto mark = [&](int id) {
    if (static_cast<size_t>(id) >= defined.size()) defined.resize(id + 1, false);
    defined[id] = true;
  };
  for (auto& [id, t] : host_consts) mark(id);
  for (const auto& in : m.inputs) {
    A2F_CHECK(!in.name.empty(), what, ": a graph input has no name");
    const int id = id_of(ids, in.name);
    input_ids.push_back(id);
    mark(id);
  }

  // Consumers of each value name, for the Conv + Relu fusion.
  std::map<std::string, std::vector<size_t>> consumers;
  for (size_t i = 0; i < m.nodes.size(); ++i)
    for (const auto& n : m.nodes[i].inputs)
      if (!n.empty()) consumers[n].push_back(i);
  std::map<std::string, bool> is_output;
  for (const auto& o : m.outputs) is_output[o.name] = true;

  const auto& table = onnx_ops::op_table();
  std::vector<bool> skip(m.nodes.size(), false);
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const OnnxNode& node = m.nodes[i];
    node_names.push_back(node.name);
    op_counts[node.op_type]++;
    if (skip[i]) continue;
    onnx_ops::NodeInfo info;
    info.node = &node;
    info.opset = m.opset;
    info.where = cat(what, ": ", node.desc());
    info.weight_dtype = opt.weight_dtype;
    A2F_CHECK(node.domain.empty(), info.where, ": operator domain '", node.domain, "' is not supported");
    auto op = table.find(node.op_type);
    A2F_CHECK(op != table.end(), info.where, ": operator ", node.op_type,
              " is not supported by the ONNX interpreter");

    Step st;
    st.where = info.where;
    bool all_const = true;
    for (const auto& name : node.inputs) {
      if (name.empty()) {
        st.in.push_back(-1);
        info.consts.push_back(nullptr);
        continue;
      }
      auto it = ids.find(name);
      A2F_CHECK(it != ids.end() && static_cast<size_t>(it->second) < defined.size() && defined[it->second],
                info.where, ": input '", name,
                "' is not produced by any earlier node (the graph is malformed or not topologically sorted)");
      st.in.push_back(it->second);
      auto c = host_consts.find(it->second);
      info.consts.push_back(c == host_consts.end() ? nullptr : &c->second);
      all_const = all_const && c != host_consts.end();
    }

    // Conv followed by its only consumer Relu: run as one conv with a fused activation.
    std::vector<std::string> out_names = node.outputs;
    if (opt.fuse && node.op_type == "Conv" && out_names.size() == 1 && !is_output.count(out_names[0])) {
      const auto& cs = consumers[out_names[0]];
      if (cs.size() == 1 && m.nodes[cs[0]].op_type == "Relu" && m.nodes[cs[0]].attributes.empty() &&
          m.nodes[cs[0]].outputs.size() == 1) {
        info.fused_act = Act::Relu;
        skip[cs[0]] = true;
        out_names = m.nodes[cs[0]].outputs;
      }
    }
    st.kernel = op->second(info, *be);
    for (const auto& name : out_names) {
      if (name.empty()) {
        st.out.push_back(-1);
        continue;
      }
      const int id = id_of(ids, name);
      A2F_CHECK(static_cast<size_t>(id) >= defined.size() || !defined[id], info.where, ": output '", name,
                "' is produced twice");
      st.out.push_back(id);
      mark(id);
    }
    // Fold nodes whose inputs are all known now (Constant, shape arithmetic on initializers).
    if (all_const) {
      std::vector<Tensor> args;
      for (size_t k = 0; k < st.in.size(); ++k)
        args.push_back(st.in[k] < 0 ? Tensor() : host_consts[st.in[k]]);
      std::vector<Tensor> res = st.kernel(*be, args);
      for (size_t k = 0; k < st.out.size() && k < res.size(); ++k)
        if (st.out[k] >= 0)
          host_consts[st.out[k]] = dtype_is_float(res[k].dtype()) ? be->to_host(res[k]) : res[k];
      continue;
    }
    steps.push_back(std::move(st));
  }

  for (const auto& o : m.outputs) {
    auto it = ids.find(o.name);
    A2F_CHECK(it != ids.end() && static_cast<size_t>(it->second) < defined.size() && defined[it->second],
              what, ": graph output '", o.name, "' is not produced by any node");
    output_ids.push_back(it->second);
  }
  // Constants the steps read, on the backend's device.
  for (auto& [id, t] : host_consts) const_values[id] = dtype_is_float(t.dtype()) ? be->to_device(t) : t;

  // Release each runtime value after its last use (graph outputs are kept).
  std::vector<int> last_use(value_names.size(), -1);
  for (size_t s = 0; s < steps.size(); ++s)
    for (int id : steps[s].in)
      if (id >= 0) last_use[id] = static_cast<int>(s);
  std::vector<bool> keep(value_names.size(), false);
  for (int id : output_ids) keep[id] = true;
  for (auto& [id, t] : host_consts) keep[id] = true;
  for (size_t id = 0; id < last_use.size(); ++id)
    if (last_use[id] >= 0 && !keep[id]) steps[last_use[id]].release.push_back(static_cast<int>(id));
}

OnnxGraph::OnnxGraph(OnnxModel model, Backend& backend, const OnnxGraphOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->be = &backend;
  impl_->opt = options;
  impl_->source = model.source;
  impl_->opset = model.opset;
  impl_->inputs = model.inputs;
  impl_->outputs = model.outputs;
  impl_->compile(model);
  log_debug(model.source, ": ", impl_->steps.size(), " steps from ", model.nodes.size(), " nodes");
}

std::unique_ptr<OnnxGraph> OnnxGraph::load(const std::filesystem::path& path, Backend& backend,
                                           const OnnxGraphOptions& options) {
  return std::make_unique<OnnxGraph>(onnx_load(path), backend, options);
}

OnnxGraph::~OnnxGraph() = default;

std::vector<Tensor> OnnxGraph::run(const std::vector<Tensor>& inputs) {
  Impl& g = *impl_;
  A2F_CHECK(inputs.size() == g.input_ids.size(), g.source, ": ", inputs.size(),
            " inputs given, the graph has ", g.input_ids.size());
  std::vector<Tensor> values = g.const_values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    const OnnxValueInfo& vi = g.inputs[i];
    A2F_CHECK(x.defined() && dtype_is_float(x.dtype()), g.source, ": input '", vi.name,
              "' must be a float tensor");
    if (vi.has_shape) {
      bool ok = x.ndim() == static_cast<int>(vi.dims.size());
      for (size_t d = 0; ok && d < vi.dims.size(); ++d)
        ok = vi.dims[d] < 0 || vi.dims[d] == x.dim(static_cast<int>(d));
      A2F_CHECK(ok, g.source, ": input '", vi.name, "' expects shape ", vi.shape_desc(), ", got ",
                shape_str(x.shape()));
    }
    values[g.input_ids[i]] = x;
  }
  std::vector<Tensor> args;
  for (const auto& st : g.steps) {
    args.clear();
    for (int id : st.in) args.push_back(id < 0 ? Tensor() : values[id]);
    std::vector<Tensor> res;
    try {
      res = st.kernel(*g.be, args);
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.rfind(st.where, 0) == 0) throw;
      fail(st.where, ": ", msg);
    }
    for (size_t k = 0; k < st.out.size(); ++k) {
      if (st.out[k] < 0) continue;
      A2F_CHECK(k < res.size(), st.where, ": produced ", res.size(), " outputs");
      values[st.out[k]] = res[k];
      if (g.dump) g.dump(g.value_names[st.out[k]], res[k]);
    }
    for (int id : st.release) values[id] = Tensor();
  }
  std::vector<Tensor> out;
  for (int id : g.output_ids) out.push_back(values[id]);
  return out;
}

const std::vector<OnnxValueInfo>& OnnxGraph::inputs() const {
  return impl_->inputs;
}
const std::vector<OnnxValueInfo>& OnnxGraph::outputs() const {
  return impl_->outputs;
}
const std::vector<std::string>& OnnxGraph::node_names() const {
  return impl_->node_names;
}
std::map<std::string, int> OnnxGraph::op_counts() const {
  return impl_->op_counts;
}
Backend& OnnxGraph::backend() const {
  return *impl_->be;
}
const std::string& OnnxGraph::source() const {
  return impl_->source;
}
int64_t OnnxGraph::opset() const {
  return impl_->opset;
}
void OnnxGraph::set_dump(std::function<void(const std::string&, const Tensor&)> fn) {
  impl_->dump = std::move(fn);
}

}  // namespace a2f
