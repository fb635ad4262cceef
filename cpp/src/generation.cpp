#include "inferspeed/generation.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "inferspeed/clock.hpp"
#include "inferspeed/error.hpp"
#include "inferspeed/interrupt.hpp"

namespace inferspeed {

size_t element_bytes(int element_type) noexcept {
  switch (element_type) {
    case 2: case 3: case 9: case 17: case 18: case 19: case 20:  // (u)int8, bool, float8 kinds
      return 1;
    case 4: case 5: case 10: case 16:  // (u)int16, float16, bfloat16
      return 2;
    case 1: case 6: case 12:  // float32, int32, uint32
      return 4;
    case 7: case 11: case 13:  // int64, float64, uint64
      return 8;
    default:
      return 0;
  }
}

float half_to_float(uint16_t bits) noexcept {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (static_cast<uint32_t>(bits) >> 10) & 0x1Fu;
  uint32_t mantissa = bits & 0x3FFu;
  uint32_t out = sign;
  if (exponent == 0x1Fu) {
    out |= 0x7F800000u | (mantissa << 13);  // infinity, NaN
  } else if (exponent != 0) {
    out |= ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    out |= (exponent << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &out, sizeof f);
  return f;
}

namespace {

constexpr int kInt32 = 6;
constexpr int kInt64 = 7;
constexpr int kBool = 9;

std::string type_name(int t) {
  switch (t) {
    case 1: return "float32";
    case 6: return "int32";
    case 7: return "int64";
    case 9: return "bool";
    case 10: return "float16";
    case 16: return "bfloat16";
    default: return "element type " + std::to_string(t);
  }
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// now + ns without overflow (INT64_MAX: no limit).
int64_t deadline_after(int64_t now, int64_t ns) noexcept { return now > INT64_MAX - ns ? INT64_MAX : now + ns; }

// Zero-filled memory aligned to a cache line, never reallocated.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) : size_(bytes) {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    data_.reset(static_cast<unsigned char*>(std::aligned_alloc(64, rounded)));
    if (!data_) throw std::bad_alloc();
    std::memset(data_.get(), 0, rounded);
  }
  unsigned char* data() const noexcept { return data_.get(); }
  size_t size() const noexcept { return size_; }

 private:
  struct Free {
    void operator()(unsigned char* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<unsigned char, Free> data_;
  size_t size_ = 0;
};

// An int64 or int32 tensor's memory.
struct IntBuffer {
  Buffer memory;
  int type = kInt64;
  IntBuffer() = default;
  IntBuffer(int element_type, int64_t count)
      : memory(static_cast<size_t>(count) * element_bytes(element_type)), type(element_type) {}
  void set(int64_t i, int64_t value) noexcept {
    if (type == kInt64) {
      reinterpret_cast<int64_t*>(memory.data())[i] = value;
    } else {
      reinterpret_cast<int32_t*>(memory.data())[i] = static_cast<int32_t>(value);
    }
  }
};

// ---- validation: every problem of a spec is std::invalid_argument, before any allocation ----

const ValueInfo* find(const std::vector<ValueInfo>& values, const std::string& name) {
  for (const ValueInfo& v : values) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

// `name` must be a tensor input or output of the model (of type `type` where it declares one).
void check_value(const std::vector<ValueInfo>& values, const std::string& name, int type, const char* what) {
  const ValueInfo* v = find(values, name);
  if (v == nullptr) throw std::invalid_argument(std::string("the model has no ") + what + " named '" + name + "'");
  if (v->kind != ValueKind::tensor) throw std::invalid_argument(std::string(what) + " '" + name + "' is not a tensor");
  if (type != 0 && v->element_type != 0 && v->element_type != type) {
    throw std::invalid_argument(std::string(what) + " '" + name + "' is " + type_name(v->element_type) +
                                " in the model, not " + type_name(type));
  }
}

void check_counts(const GenerationSpec& spec) {
  if (spec.batch < 1 || spec.prompt_tokens < 1 || spec.gen_tokens < 1) {
    throw std::invalid_argument("batch, prompt tokens and generated tokens must each be at least 1");
  }
  if (static_cast<int64_t>(spec.prompt_ids.size()) != spec.batch * spec.prompt_tokens) {
    throw std::invalid_argument("prompt_ids must hold batch x prompt tokens ids");
  }
  for (int64_t id : spec.prompt_ids) {
    if (id < 0 || (spec.vocab > 0 && id >= spec.vocab) ||
        (spec.ids_type == kInt32 && id > std::numeric_limits<int32_t>::max())) {
      throw std::invalid_argument("prompt id " + std::to_string(id) + " is not a token of the vocabulary");
    }
  }
  if (spec.warmup < 0 || spec.max_repetitions < 0 || spec.max_ns < 0 || spec.prefill_past < 0) {
    throw std::invalid_argument("warmup, max_repetitions, max_ns and prefill_past must not be negative");
  }
  if (spec.max_repetitions == 0 && spec.max_ns == 0) {
    throw std::invalid_argument("give max_repetitions or max_ns (or both): generation needs a limit");
  }
  for (int t : {spec.ids_type, spec.mask_type, spec.position_type}) {
    if (t != kInt64 && t != kInt32) throw std::invalid_argument("ids, mask and positions must be int64 or int32");
  }
  const int64_t needed = spec.prompt_tokens + spec.gen_tokens - 1;
  if (spec.max_length > 0 && needed > spec.max_length) {
    throw std::invalid_argument("the generation needs " + std::to_string(needed) + " positions; the model takes " +
                                std::to_string(spec.max_length) + " at most");
  }
  if (spec.share_buffer && spec.prefill_past > 0) {
    throw std::invalid_argument("a shared past/present buffer takes no dummy prefill past");
  }
}

void check_cache(const Session& session, const CacheTensorSpec& c) {
  const int rank = static_cast<int>(c.shape.size());
  if (c.batch_axis < 0 || c.batch_axis >= rank || c.seq_axis < 0 || c.seq_axis >= rank ||
      c.batch_axis == c.seq_axis) {
    throw std::invalid_argument("cache '" + c.past + "': its batch and sequence axes must be two axes of its shape " +
                                shape_text(c.shape));
  }
  for (int d = 0; d < rank; ++d) {
    if (d != c.batch_axis && d != c.seq_axis && c.shape[static_cast<size_t>(d)] < 1) {
      throw std::invalid_argument("cache '" + c.past + "': shape " + shape_text(c.shape) + " has an unknown dim");
    }
  }
  if (element_bytes(c.element_type) == 0) {
    throw std::invalid_argument("cache '" + c.past + "': " + type_name(c.element_type) + " is not a cache type");
  }
  check_value(session.inputs(), c.past, c.element_type, "input");
  check_value(session.outputs(), c.present, c.element_type, "output");
  // The dims the model fixes must be the spec's (a wrong head count fails here, not at step 0).
  for (const ValueInfo* v : {find(session.inputs(), c.past), find(session.outputs(), c.present)}) {
    bool fits = v->shape.empty() || v->shape.size() == c.shape.size();  // empty: rank unknown
    for (size_t d = 0; fits && d < v->shape.size(); ++d) {
      const bool free_axis = static_cast<int>(d) == c.batch_axis || static_cast<int>(d) == c.seq_axis;
      fits = free_axis || v->shape[d] < 0 || v->shape[d] == c.shape[d];
    }
    if (!fits) {
      throw std::invalid_argument("cache '" + v->name + "' has shape " + shape_text(v->shape) +
                                  " in the model; the spec gives " + shape_text(c.shape));
    }
  }
}

// Every input of the model gets exactly one value; every output named exists.
void check_names(const Session& session, const GenerationSpec& spec) {
  std::set<std::string> given;
  auto give = [&](const std::string& name, int type, const char* role) {
    if (name.empty()) return;
    check_value(session.inputs(), name, type, "input");
    if (!given.insert(name).second) throw std::invalid_argument("input '" + name + "' is given twice (" + role + ")");
  };
  if (spec.input_ids.empty()) throw std::invalid_argument("the spec names no input_ids");
  give(spec.input_ids, spec.ids_type, "input_ids");
  give(spec.attention_mask, spec.mask_type, "attention_mask");
  give(spec.position_ids, spec.position_type, "position_ids");
  give(spec.cache_position, 0, "cache_position");
  give(spec.use_cache_branch, kBool, "use_cache_branch");
  if (!spec.cache_position.empty()) {
    const int t = find(session.inputs(), spec.cache_position)->element_type;
    if (t != kInt64 && t != kInt32) throw std::invalid_argument("cache_position must be int64 or int32");
  }
  if (spec.caches.empty()) throw std::invalid_argument("the spec names no cache tensors");
  std::set<std::string> presents;
  for (const CacheTensorSpec& c : spec.caches) {
    check_cache(session, c);
    give(c.past, c.element_type, "a cache's past");
    if (!presents.insert(c.present).second) throw std::invalid_argument("output '" + c.present + "' is given twice");
  }
  for (const FixedInput& x : spec.extra_inputs) {
    const size_t bytes = element_bytes(x.element_type);
    if (bytes == 0 || x.data.size() != static_cast<size_t>(numel(x.shape)) * bytes) {
      throw std::invalid_argument("extra input '" + x.name + "': its data does not match its type and shape");
    }
    give(x.name, x.element_type, "an extra input");
  }
  for (const LengthInputSpec& x : spec.lengths) {
    if (x.element_type != kInt64 && x.element_type != kInt32) {
      throw std::invalid_argument("length input '" + x.name + "' must be int64 or int32");
    }
    if (x.batch_axis >= static_cast<int>(x.shape.size()) || numel(x.shape) < 1) {
      throw std::invalid_argument("length input '" + x.name + "': its batch axis must be an axis of its shape");
    }
    give(x.name, x.element_type, "a length input");
  }
  for (const ValueInfo& v : session.inputs()) {
    if (given.count(v.name) == 0) {
      throw std::invalid_argument("model input '" + v.name + "' gets no value (give it as an extra input)");
    }
  }
  check_value(session.outputs(), spec.logits, 0, "output");
  if (presents.count(spec.logits) != 0) throw std::invalid_argument("the logits cannot be a cache's present");
}

// ---- the generation ----

// A step's geometry: tokens fed, positions before it, and the cache lengths bound.
struct StepShape {
  int64_t n;            // tokens fed (input_ids [batch, n])
  int64_t before;       // positions of the sequence before the step
  int64_t past_len;     // the past's sequence length as bound
  int64_t present_len;  // the present's
};

// The logits of one step, as the argmax reads them.
struct LogitsView {
  const unsigned char* data = nullptr;
  int type = 0;
  std::vector<int64_t> shape;
};

// What one generation writes: per step times and tokens ([batch, gen_tokens]).
struct Record {
  int64_t* step_ns;
  int64_t* sample_ns;
  int64_t* tokens;
  int64_t* token_ns = nullptr;  // when each step's token was chosen (the clock), where wanted
};

struct Outcome {
  int64_t steps = 0;         // steps run
  bool stopped = false;      // the hook or a signal stopped it
  int64_t elapsed_ns = 0;    // binding, runs and choices
};

// A non-cache output: bound to the device until its shape per step kind (0 prefill, 1 decode)
// is known, then to a buffer of ours.
struct OutputSlot {
  std::string name;
  bool cache = false;
  int type = 0;
  bool seen[2] = {false, false};
  bool steady[2] = {true, true};
  std::vector<int64_t> shape[2];
  Buffer memory;
  detail::Handle<OrtValue> value[2];
};

// Reads the bound output values after a run; owns them until destroyed.
class BoundOutputs {
 public:
  BoundOutputs(const OrtApi* api, const Runtime& rt, const OrtIoBinding* binding) : api_(api) {
    rt.check(api->GetAllocatorWithDefaultOptions(&allocator_));
    rt.check(api->GetBoundOutputValues(binding, allocator_, &values_, &count_));
  }
  BoundOutputs(const BoundOutputs&) = delete;
  BoundOutputs& operator=(const BoundOutputs&) = delete;
  ~BoundOutputs() {
    for (size_t i = 0; i < count_; ++i) api_->ReleaseValue(values_[i]);
    if (values_ != nullptr) {
      OrtStatus* st = api_->AllocatorFree(allocator_, values_);
      if (st != nullptr) api_->ReleaseStatus(st);
    }
  }
  size_t count() const noexcept { return count_; }
  OrtValue* at(size_t i) const noexcept { return values_[i]; }

 private:
  const OrtApi* api_;
  OrtAllocator* allocator_ = nullptr;
  OrtValue** values_ = nullptr;
  size_t count_ = 0;
};

class Generator {
 public:
  Generator(Session& session, const GenerationSpec& spec);
  /// One generation of the first `prompt` ids of each prompt row and `gen` tokens (at most the
  /// spec's lengths, which the buffers are sized for).
  Outcome run(const Record& record, const ChunkHook& hook, const TerminateOnSigint& guard, int64_t prompt,
              int64_t gen);
  void append_present_addresses(std::vector<uint64_t>& out);
  void describe(GenerationResult& r) const;
  const OrtApi* api() const noexcept { return api_; }
  OrtRunOptions* run_options() const noexcept { return run_options_; }

 private:
  StepShape step_shape(int64_t s) const noexcept;
  bool shorter_prefill(int64_t s) const noexcept { return s == 0 && prompt_ != spec_.prompt_tokens; }
  bool tensor_info(OrtValue* value, int& type, std::vector<int64_t>& shape) const;
  std::vector<int64_t> cache_shape(const CacheTensorSpec& c, int64_t length) const;
  detail::Handle<OrtValue> wrap(void* data, const std::vector<int64_t>& shape, int type);
  void bind_input(const std::string& name, void* data, const std::vector<int64_t>& shape, int type);
  void setup_caches();
  void bind_step(int64_t s);
  void bind_outputs(int64_t s);
  [[noreturn]] void fail(OrtStatus* status, int64_t s) const;
  LogitsView read_outputs(int64_t s);
  void choose(const LogitsView& logits, int64_t s, const Record& record);
  void preallocate_outputs();

  const Runtime& rt_;
  const OrtApi* api_;
  OrtSession* session_;
  OrtRunOptions* run_options_;
  const OrtMemoryInfo* cpu_;
  const GenerationSpec& spec_;
  int64_t capacity_ = 0;  // positions each cache buffer holds
  std::vector<Buffer> cache_memory_;  // two per cache tensor (one with share_buffer)
  Buffer dummy_;                      // zeros: the prefill's dummy past
  IntBuffer ids_, mask_, positions_, cache_position_;
  std::vector<IntBuffer> lengths_;  // one per length input, refilled each step
  std::vector<std::vector<int64_t>> length_shapes_;
  bool branch_[2] = {false, true};
  detail::Handle<OrtValue> branch_values_[2];
  std::vector<detail::Handle<OrtValue>> held_;  // values bound for the whole generation
  std::vector<detail::Handle<OrtValue>> step_values_;
  std::vector<OutputSlot> outputs_;  // the session's outputs, in its order
  std::vector<size_t> present_slot_;  // per cache tensor: its present's slot
  size_t logits_slot_ = 0;
  bool learned_ = false;  // a whole generation ran: output shapes are known
  int64_t prompt_ = 0;    // the generation in progress: its prompt's tokens ...
  int64_t gen_ = 0;       // ... and its output tokens
  // Declared last, so released first: it refers to the values and buffers above.
  detail::Handle<OrtIoBinding> binding_;
};

Generator::Generator(Session& session, const GenerationSpec& spec)
    : rt_(session.runtime()),
      api_(session.api()),
      session_(session.ort_session()),
      run_options_(session.run_options()),
      cpu_(session.cpu_memory()),
      spec_(spec),
      prompt_(spec.prompt_tokens),
      gen_(spec.gen_tokens),
      binding_(api_->ReleaseIoBinding) {
  rt_.check(api_->CreateIoBinding(session_, binding_.out()));
  const int64_t b = spec.batch;
  const int64_t total = spec.prompt_tokens + spec.gen_tokens - 1;
  ids_ = IntBuffer(spec.ids_type, b * spec.prompt_tokens);
  mask_ = IntBuffer(spec.mask_type, b * total);
  for (int64_t i = 0; i < b * total; ++i) mask_.set(i, 1);
  positions_ = IntBuffer(spec.position_type, b * spec.prompt_tokens);
  if (!spec.cache_position.empty()) {
    cache_position_ = IntBuffer(find(session.inputs(), spec.cache_position)->element_type, spec.prompt_tokens);
  }
  for (int k = 0; k < 2; ++k) branch_values_[k] = wrap(&branch_[k], {1}, kBool);
  for (const LengthInputSpec& x : spec.lengths) {
    std::vector<int64_t> shape = x.shape;
    if (x.batch_axis >= 0) shape[static_cast<size_t>(x.batch_axis)] = b;
    length_shapes_.push_back(shape);
    lengths_.emplace_back(x.element_type, numel(shape));
  }
  for (const FixedInput& x : spec.extra_inputs) {
    bind_input(x.name, const_cast<unsigned char*>(x.data.data()), x.shape, x.element_type);
  }
  for (const ValueInfo& v : session.outputs()) {
    outputs_.emplace_back();
    outputs_.back().name = v.name;
    if (v.name == spec.logits) logits_slot_ = outputs_.size() - 1;
    rt_.check(api_->BindOutputToDevice(binding_.get(), v.name.c_str(), cpu_));
  }
  for (const CacheTensorSpec& c : spec.caches) {
    for (size_t j = 0; j < outputs_.size(); ++j) {
      if (outputs_[j].name == c.present) {
        outputs_[j].cache = true;
        present_slot_.push_back(j);
      }
    }
  }
  setup_caches();
}

std::vector<int64_t> Generator::cache_shape(const CacheTensorSpec& c, int64_t length) const {
  std::vector<int64_t> shape = c.shape;
  shape[static_cast<size_t>(c.batch_axis)] = spec_.batch;
  shape[static_cast<size_t>(c.seq_axis)] = length;
  return shape;
}

void Generator::setup_caches() {
  const int64_t total = spec_.prompt_tokens + spec_.gen_tokens - 1;
  capacity_ = spec_.share_buffer && spec_.max_length > 0 ? spec_.max_length : total;
  size_t dummy_bytes = 0;
  for (const CacheTensorSpec& c : spec_.caches) {
    const size_t bytes = static_cast<size_t>(numel(cache_shape(c, capacity_))) * element_bytes(c.element_type);
    for (int k = 0; k < (spec_.share_buffer ? 1 : 2); ++k) cache_memory_.emplace_back(bytes);
    const auto dummy = static_cast<size_t>(numel(cache_shape(c, spec_.prefill_past)));
    dummy_bytes = std::max(dummy_bytes, dummy * element_bytes(c.element_type));
  }
  dummy_ = Buffer(dummy_bytes);
  if (!spec_.share_buffer) return;
  // One buffer per tensor, bound once as both its past and its present.
  for (size_t i = 0; i < spec_.caches.size(); ++i) {
    const CacheTensorSpec& c = spec_.caches[i];
    held_.push_back(wrap(cache_memory_[i].data(), cache_shape(c, capacity_), c.element_type));
    rt_.check(api_->BindInput(binding_.get(), c.past.c_str(), held_.back().get()));
    rt_.check(api_->BindOutput(binding_.get(), c.present.c_str(), held_.back().get()));
  }
}

detail::Handle<OrtValue> Generator::wrap(void* data, const std::vector<int64_t>& shape, int type) {
  detail::Handle<OrtValue> value(api_->ReleaseValue);
  const size_t bytes = static_cast<size_t>(numel(shape)) * element_bytes(type);
  rt_.check(api_->CreateTensorWithDataAsOrtValue(cpu_, data, bytes, shape.data(), shape.size(),
                                                 static_cast<ONNXTensorElementDataType>(type), value.out()));
  return value;
}

void Generator::bind_input(const std::string& name, void* data, const std::vector<int64_t>& shape, int type) {
  held_.push_back(wrap(data, shape, type));
  rt_.check(api_->BindInput(binding_.get(), name.c_str(), held_.back().get()));
}

StepShape Generator::step_shape(int64_t s) const noexcept {
  const int64_t p = prompt_;
  StepShape g = s == 0 ? StepShape{p, 0, spec_.prefill_past, p} : StepShape{1, p + s - 1, p + s - 1, p + s};
  if (spec_.share_buffer) g.past_len = g.present_len = capacity_;
  return g;
}

// New OrtValues over the same buffers for step s: ids, mask, positions, branch flag, caches.
void Generator::bind_step(int64_t s) {
  const StepShape g = step_shape(s);
  const int64_t b = spec_.batch;
  step_values_.clear();  // the binding holds its own references to the values it has
  auto bind = [&](const std::string& name, void* data, const std::vector<int64_t>& shape, int type, bool out) {
    step_values_.push_back(wrap(data, shape, type));
    rt_.check(out ? api_->BindOutput(binding_.get(), name.c_str(), step_values_.back().get())
                  : api_->BindInput(binding_.get(), name.c_str(), step_values_.back().get()));
  };
  if (s == 0) {  // the first prompt_ ids of each row
    for (int64_t r = 0; r < b; ++r) {
      const int64_t* row = spec_.prompt_ids.data() + r * spec_.prompt_tokens;
      for (int64_t j = 0; j < g.n; ++j) ids_.set(r * g.n + j, row[j]);
    }
  }
  bind(spec_.input_ids, ids_.memory.data(), {b, g.n}, ids_.type, false);
  if (!spec_.attention_mask.empty()) bind(spec_.attention_mask, mask_.memory.data(), {b, g.before + g.n}, mask_.type, false);
  if (!spec_.position_ids.empty()) {
    for (int64_t r = 0; r < b; ++r) {
      for (int64_t j = 0; j < g.n; ++j) positions_.set(r * g.n + j, g.before + j);
    }
    bind(spec_.position_ids, positions_.memory.data(), {b, g.n}, positions_.type, false);
  }
  if (!spec_.cache_position.empty()) {
    for (int64_t j = 0; j < g.n; ++j) cache_position_.set(j, g.before + j);
    bind(spec_.cache_position, cache_position_.memory.data(), {g.n}, cache_position_.type, false);
  }
  for (size_t k = 0; k < spec_.lengths.size(); ++k) {
    const int64_t count = numel(length_shapes_[k]);
    for (int64_t i = 0; i < count; ++i) lengths_[k].set(i, g.before + g.n + spec_.lengths[k].offset);
    bind(spec_.lengths[k].name, lengths_[k].memory.data(), length_shapes_[k], lengths_[k].type, false);
  }
  if (!spec_.use_cache_branch.empty() && s <= 1) {
    rt_.check(api_->BindInput(binding_.get(), spec_.use_cache_branch.c_str(), branch_values_[s > 0 ? 1 : 0].get()));
  }
  if (!spec_.share_buffer) {
    // Step s reads buffer s % 2 and writes buffer (s + 1) % 2, which step s + 1 then reads.
    for (size_t i = 0; i < spec_.caches.size(); ++i) {
      const CacheTensorSpec& c = spec_.caches[i];
      unsigned char* past = s == 0 ? dummy_.data() : cache_memory_[2 * i + static_cast<size_t>(s % 2)].data();
      bind(c.past, past, cache_shape(c, g.past_len), c.element_type, false);
      bind(c.present, cache_memory_[2 * i + static_cast<size_t>((s + 1) % 2)].data(), cache_shape(c, g.present_len),
           c.element_type, true);
    }
  }
  bind_outputs(s);
}

// Outputs other than presents: our buffer once its shape for this kind of step is known, else
// the device (bound again at every step: a binding would otherwise hand ORT's output of the
// step before to the next as a preallocated one, of the wrong shape). A prefill shorter than
// the spec's prompt writes to the device too: its outputs are not the learned shape.
void Generator::bind_outputs(int64_t s) {
  const int kind = s == 0 ? 0 : 1;
  const bool shorter = shorter_prefill(s);
  for (OutputSlot& o : outputs_) {
    if (o.cache) continue;
    if (o.value[kind].get() != nullptr && !shorter) {
      if (s <= 1) rt_.check(api_->BindOutput(binding_.get(), o.name.c_str(), o.value[kind].get()));
    } else {
      rt_.check(api_->BindOutputToDevice(binding_.get(), o.name.c_str(), cpu_));
    }
  }
}

void Generator::fail(OrtStatus* status, int64_t s) const {
  const int code = static_cast<int>(api_->GetErrorCode(status));
  const std::string message = api_->GetErrorMessage(status);
  api_->ReleaseStatus(status);
  const StepShape g = step_shape(s);
  throw OrtError(code, "generation step " + std::to_string(s) + (s == 0 ? " (prefill" : " (decode") +
                           ", past length " + std::to_string(g.past_len) + "): " + message);
}

// The element type and shape of a bound value; false when it is not a tensor.
bool Generator::tensor_info(OrtValue* value, int& type, std::vector<int64_t>& shape) const {
  int is_tensor = 0;
  rt_.check(api_->IsTensor(value, &is_tensor));
  if (is_tensor == 0) return false;
  detail::Handle<OrtTensorTypeAndShapeInfo> info(api_->ReleaseTensorTypeAndShapeInfo);
  rt_.check(api_->GetTensorTypeAndShape(value, info.out()));
  ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  rt_.check(api_->GetTensorElementType(info.get(), &element));
  size_t rank = 0;
  rt_.check(api_->GetDimensionsCount(info.get(), &rank));
  shape.assign(rank, 0);
  rt_.check(api_->GetDimensions(info.get(), shape.data(), rank));
  type = static_cast<int>(element);
  return true;
}

// After step s: learn the outputs' shapes (first generation) and find the logits. Once learned,
// the shapes stay those of the spec's lengths (a shorter prefill's are read, not kept).
LogitsView Generator::read_outputs(int64_t s) {
  const int kind = s == 0 ? 0 : 1;
  OutputSlot& lo = outputs_[logits_slot_];
  if (lo.value[kind].get() != nullptr && !shorter_prefill(s)) {
    return LogitsView{lo.memory.data(), lo.type, lo.shape[kind]};
  }
  const BoundOutputs bound(api_, rt_, binding_.get());
  LogitsView view;
  for (size_t j = 0; j < outputs_.size() && j < bound.count(); ++j) {
    OutputSlot& o = outputs_[j];
    if (o.cache || (learned_ && j != logits_slot_)) continue;
    int type = 0;
    std::vector<int64_t> shape;
    if (!tensor_info(bound.at(j), type, shape)) {
      if (!learned_) o.steady[kind] = false;
      continue;
    }
    if (!learned_) {
      o.type = type;
      if (o.seen[kind] && o.shape[kind] != shape) o.steady[kind] = false;
      o.seen[kind] = true;
      o.shape[kind] = shape;
    }
    if (j == logits_slot_) {
      void* data = nullptr;
      rt_.check(api_->GetTensorMutableData(bound.at(j), &data));
      view = LogitsView{static_cast<const unsigned char*>(data), type, shape};
    }
  }
  const std::string where = "the logits '" + spec_.logits + "' ";
  if (view.type != 1 && view.type != 10 && view.type != 16) {
    throw std::invalid_argument(where + "are " + (view.type == 0 ? "not a tensor" : type_name(view.type)) +
                                ", not float32, float16 or bfloat16");
  }
  if (view.shape.size() < 2 || view.shape[0] != spec_.batch || view.shape.back() < 1 || view.data == nullptr ||
      numel(view.shape) < spec_.batch * view.shape.back() || (spec_.vocab > 0 && view.shape.back() != spec_.vocab)) {
    throw std::invalid_argument(where + "have shape " + shape_text(view.shape) + ", not [batch, ..., vocab]");
  }
  return view;
}

template <class Load>
int64_t argmax(int64_t count, Load load) noexcept {
  int64_t best = 0;
  float best_value = load(0);
  for (int64_t j = 1; j < count; ++j) {
    const float v = load(j);
    if (v > best_value) {
      best_value = v;
      best = j;
    }
  }
  return best;
}

// Greedy choice over the last position of each batch row; the token also becomes the next
// step's input_ids [batch, 1].
void Generator::choose(const LogitsView& logits, int64_t s, const Record& record) {
  const int64_t vocab = logits.shape.back();
  const int64_t row = numel(logits.shape) / spec_.batch;
  for (int64_t r = 0; r < spec_.batch; ++r) {
    const int64_t offset = r * row + row - vocab;
    int64_t token;
    if (logits.type == 1) {
      const float* p = reinterpret_cast<const float*>(logits.data) + offset;
      token = argmax(vocab, [p](int64_t j) { return p[j]; });
    } else {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(logits.data) + offset;
      if (logits.type == 10) {
        token = argmax(vocab, [p](int64_t j) { return half_to_float(p[j]); });
      } else {
        token = argmax(vocab, [p](int64_t j) {
          const uint32_t bits = static_cast<uint32_t>(p[j]) << 16;
          float f;
          std::memcpy(&f, &bits, sizeof f);
          return f;
        });
      }
    }
    record.tokens[r * spec_.gen_tokens + s] = token;
    ids_.set(r, token);
  }
}

// Buffers of ours for the outputs whose shape per step kind stayed the same.
void Generator::preallocate_outputs() {
  for (OutputSlot& o : outputs_) {
    const size_t bytes = element_bytes(o.type);
    if (o.cache || bytes == 0) continue;
    size_t need = 0;
    for (int k = 0; k < 2; ++k) {
      if (o.seen[k] && o.steady[k]) need = std::max(need, static_cast<size_t>(numel(o.shape[k])) * bytes);
    }
    if (need == 0) continue;
    o.memory = Buffer(need);
    for (int k = 0; k < 2; ++k) {
      if (o.seen[k] && o.steady[k]) o.value[k] = wrap(o.memory.data(), o.shape[k], o.type);
    }
  }
  learned_ = true;
}

Outcome Generator::run(const Record& record, const ChunkHook& hook, const TerminateOnSigint& guard, int64_t prompt,
                       int64_t gen) {
  prompt_ = prompt;
  gen_ = gen;
  Outcome out;
  for (int64_t s = 0; s < gen_; ++s) {
    const int64_t begin = now_ns();
    bind_step(s);
    const int64_t t0 = now_ns();
    OrtStatus* status = api_->RunWithBinding(session_, run_options_, binding_.get());
    const int64_t t1 = now_ns();
    if (status != nullptr) {
      if (!guard.fired()) fail(status, s);  // throws
      // Ctrl-C made ORT abandon the step: not a latency; stop as interrupted.
      api_->ReleaseStatus(status);
      if (hook) hook();  // consume the caller's pending Ctrl-C
      out.stopped = true;
      return out;
    }
    const LogitsView logits = read_outputs(s);
    const int64_t t2 = now_ns();
    choose(logits, s, record);
    const int64_t t3 = now_ns();
    record.step_ns[s] = t1 - t0;
    record.sample_ns[s] = t3 - t2;
    if (record.token_ns != nullptr) record.token_ns[s] = t3;
    out.elapsed_ns += t3 - begin;
    out.steps = s + 1;
    if (hook && !hook()) {
      out.stopped = true;
      return out;
    }
  }
  // Learned from a generation of the spec's lengths only: the prefill's outputs are its shape.
  if (!learned_ && prompt_ == spec_.prompt_tokens && gen_ == spec_.gen_tokens) preallocate_outputs();
  return out;
}

void Generator::append_present_addresses(std::vector<uint64_t>& out) {
  const BoundOutputs bound(api_, rt_, binding_.get());
  for (size_t slot : present_slot_) {
    void* data = nullptr;
    if (slot < bound.count()) rt_.check(api_->GetTensorMutableData(bound.at(slot), &data));
    out.push_back(reinterpret_cast<uint64_t>(data));
  }
}

void Generator::describe(GenerationResult& r) const {
  const OutputSlot& lo = outputs_[logits_slot_];
  if (lo.seen[0]) r.prefill_logits_shape = lo.shape[0];
  if (lo.seen[1]) r.decode_logits_shape = lo.shape[1];
  for (const OutputSlot& o : outputs_) {
    if (!o.cache && (o.value[0].get() != nullptr || o.value[1].get() != nullptr)) r.preallocated_outputs.push_back(o.name);
  }
  for (size_t i = 0; i < spec_.caches.size(); ++i) {
    const size_t first = spec_.share_buffer ? i : 2 * i;
    const size_t second = spec_.share_buffer ? i : 2 * i + 1;
    r.buffer_addresses.push_back(reinterpret_cast<uint64_t>(cache_memory_[first].data()));
    r.buffer_addresses.push_back(reinterpret_cast<uint64_t>(cache_memory_[second].data()));
  }
  for (const Buffer& b : cache_memory_) r.cache_bytes += static_cast<int64_t>(b.size());
}

// One measured repetition, kept apart until the end: no array of every repetition so far is
// reallocated and copied between two generations (which would evict the caches before a prefill).
struct Repetition {
  std::vector<int64_t> step_ns, sample_ns, tokens;
  int64_t generation_ns = 0;
  int64_t steps = 0;
  std::vector<uint64_t> present_addresses;
};

// The repetitions after the warm-up, until a limit or a stop.
void measure(Generator& gen, const GenerationSpec& spec, const ChunkHook& hook, const TerminateOnSigint& guard,
             GenerationResult& r, std::deque<Repetition>& reps) {
  const auto per_rep = static_cast<size_t>(spec.gen_tokens);
  const int64_t cap = std::max<int64_t>(1, kMaxSamples / (spec.gen_tokens * spec.batch));
  const int64_t max_reps = spec.max_repetitions > 0 ? std::min(spec.max_repetitions, cap) : cap;
  r.start_ns = now_ns();
  const int64_t end_by = spec.max_ns > 0 ? deadline_after(r.start_ns, spec.max_ns) : INT64_MAX;
  while (true) {
    Repetition& rep = reps.emplace_back();
    rep.step_ns.assign(per_rep, -1);
    rep.sample_ns.assign(per_rep, -1);
    rep.tokens.assign(per_rep * static_cast<size_t>(spec.batch), -1);
    const Outcome o = gen.run(Record{rep.step_ns.data(), rep.sample_ns.data(), rep.tokens.data()}, hook, guard,
                              spec.prompt_tokens, spec.gen_tokens);
    r.end_ns = now_ns();
    rep.generation_ns = o.elapsed_ns;
    rep.steps = o.steps;
    gen.append_present_addresses(rep.present_addresses);
    const auto done = static_cast<int64_t>(reps.size());
    if (o.stopped) {
      r.interrupted = true;
      break;
    }
    if (done >= max_reps) {
      r.capped = max_reps == cap && (spec.max_repetitions <= 0 || spec.max_repetitions > cap);
      break;
    }
    if (r.end_ns >= end_by) break;
  }
}

}  // namespace

struct Generation::Impl {
  GenerationSpec spec;  // declared before the generator, which refers to it
  Generator gen;
  std::vector<int64_t> samples;  // serve()'s, not kept
  Impl(Session& session, GenerationSpec&& s)
      : spec(std::move(s)), gen(session, spec), samples(static_cast<size_t>(spec.gen_tokens)) {}
};

Generation::Generation(Session& session, GenerationSpec spec) {
  check_counts(spec);
  check_names(session, spec);
  impl_ = std::make_unique<Impl>(session, std::move(spec));
}

Generation::~Generation() = default;

GenerationResult Generation::run(int64_t warmup, int64_t max_repetitions, int64_t max_ns,
                                 const ChunkHook& between_steps) {
  GenerationSpec& spec = impl_->spec;
  spec.warmup = warmup;
  spec.max_repetitions = max_repetitions;
  spec.max_ns = max_ns;
  check_counts(spec);
  Generator& gen = impl_->gen;
  // Ctrl-C also stops a step in progress (a model that takes seconds per step).
  const TerminateOnSigint guard(gen.api(), gen.run_options());
  GenerationResult r;
  r.batch = spec.batch;
  r.gen_tokens = spec.gen_tokens;
  const auto per_rep = static_cast<size_t>(spec.gen_tokens);
  std::vector<int64_t> steps(per_rep), samples(per_rep), tokens(per_rep * static_cast<size_t>(spec.batch));
  std::deque<Repetition> reps;
  for (int64_t w = 0; w < spec.warmup && !r.interrupted; ++w) {
    const Outcome o =
        gen.run(Record{steps.data(), samples.data(), tokens.data()}, between_steps, guard, spec.prompt_tokens,
                spec.gen_tokens);
    r.warmup_ns.push_back(o.elapsed_ns);
    r.interrupted = o.stopped;
  }
  if (r.interrupted) {
    r.start_ns = r.end_ns = now_ns();
  } else {
    measure(gen, spec, between_steps, guard, r, reps);
  }
  r.repetitions = static_cast<int64_t>(reps.size());
  for (const Repetition& rep : reps) {
    r.step_ns.insert(r.step_ns.end(), rep.step_ns.begin(), rep.step_ns.end());
    r.sample_ns.insert(r.sample_ns.end(), rep.sample_ns.begin(), rep.sample_ns.end());
    r.tokens.insert(r.tokens.end(), rep.tokens.begin(), rep.tokens.end());
    r.generation_ns.push_back(rep.generation_ns);
    r.present_addresses.insert(r.present_addresses.end(), rep.present_addresses.begin(), rep.present_addresses.end());
    r.last_steps = rep.steps;
  }
  gen.describe(r);
  return r;
}

int64_t Generation::serve(int64_t prompt_tokens, int64_t gen_tokens, int64_t* token_ns, int64_t* step_ns,
                          int64_t* tokens, const ChunkHook& keep_going, const TerminateOnSigint& guard) {
  Impl& g = *impl_;
  if (prompt_tokens < 1 || prompt_tokens > g.spec.prompt_tokens || gen_tokens < 1 || gen_tokens > g.spec.gen_tokens) {
    throw std::invalid_argument("a request's prompt and output tokens must each lie between 1 and the stream's");
  }
  return g.gen.run(Record{step_ns, g.samples.data(), tokens, token_ns}, keep_going, guard, prompt_tokens, gen_tokens)
      .steps;
}

int64_t Generation::prompt_tokens() const noexcept { return impl_->spec.prompt_tokens; }
int64_t Generation::gen_tokens() const noexcept { return impl_->spec.gen_tokens; }
int64_t Generation::batch() const noexcept { return impl_->spec.batch; }

GenerationResult generate(Session& session, const GenerationSpec& spec, const ChunkHook& between_steps) {
  Generation generation(session, spec);
  return generation.run(spec.warmup, spec.max_repetitions, spec.max_ns, between_steps);
}

}  // namespace inferspeed
