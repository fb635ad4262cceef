// One ONNX Runtime session with its inputs bound and outputs preallocated, ready to be timed.
#pragma once

#include <onnxruntime_c_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "inferspeed/runtime.hpp"

namespace inferspeed {

namespace detail {

/// Move-only owner of one ORT object, released with the matching OrtApi::Release* function.
template <class T>
class Handle {
 public:
  using Release = void (*)(T*);
  Handle() = default;
  explicit Handle(Release release_fn) : release_(release_fn) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : ptr_(other.ptr_), release_(other.release_) { other.ptr_ = nullptr; }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      release_ = other.release_;
    }
    return *this;
  }
  ~Handle() { reset(); }

  T* get() const noexcept { return ptr_; }
  /// Out-parameter for an ORT Create* call; releases what was held.
  T** out() noexcept {
    reset();
    return &ptr_;
  }
  T* release() noexcept { return std::exchange(ptr_, nullptr); }
  void reset() noexcept {
    if (ptr_ != nullptr && release_ != nullptr) release_(ptr_);
    ptr_ = nullptr;
  }

 private:
  T* ptr_ = nullptr;
  Release release_ = nullptr;
};

}  // namespace detail

/// ONNXType of a graph input or output, as ORT reports it.
enum class ValueKind : int { unknown = 0, tensor = 1, sequence = 2, map = 3, opaque = 4, sparse_tensor = 5, optional = 6 };

/// Name, type and shape of a graph input or output. Unknown dims are -1; `symbolic[i]` names
/// dim i when the model gives it a symbol (empty otherwise). A sequence, map or optional
/// describes what it holds in `inner` (its element, its values, its contained value; the
/// name there is empty), a map its keys' element type in `key_type`.
struct ValueInfo {
  std::string name;
  ValueKind kind = ValueKind::unknown;
  int element_type = 0;  ///< ONNXTensorElementDataType (0 when not a tensor)
  std::vector<int64_t> shape;
  std::vector<std::string> symbolic;
  int key_type = 0;              ///< a map's key element type (0 otherwise)
  std::vector<ValueInfo> inner;  ///< one entry for a sequence, map or optional whose type ORT gives
};

/// One tensor that goes into an input that is not a plain tensor (an element of a sequence, the
/// keys or values of a map): numeric data in caller-owned memory (`data`, `nbytes`, not copied:
/// it must outlive the binding) or, for element type string, `strings` (copied).
struct TensorPart {
  int element_type = 0;
  std::vector<int64_t> shape;
  void* data = nullptr;
  size_t nbytes = 0;
  std::vector<std::string> strings;
};

/// An execution provider to append, with its options (key, value).
struct ProviderSpec {
  std::string name;
  std::vector<std::pair<std::string, std::string>> options;
};

/// Everything that configures an OrtSessionOptions. Validated by the Python layer.
struct SessionConfig {
  int intra_op_threads = 0;   ///< 0: ORT's default
  int inter_op_threads = 0;   ///< 0: ORT's default
  int graph_optimization_level = 99;  ///< GraphOptimizationLevel
  bool parallel_execution = false;    ///< ORT_PARALLEL instead of ORT_SEQUENTIAL
  bool cpu_mem_arena = true;          ///< false: DisableCpuMemArena
  bool mem_pattern = true;            ///< false: DisableMemPattern
  std::string profile_prefix;         ///< non-empty: EnableProfiling with this file prefix
  std::vector<std::pair<std::string, std::string>> config_entries;
  std::vector<ProviderSpec> providers;
};

/// The raw handles one timed call needs, so the loops can inline the calls. Input set k is
/// bound in bindings[k] and listed in input_values[k].
struct CallHandles {
  const OrtApi* api;
  OrtSession* session;
  OrtRunOptions* run_options;
  OrtIoBinding* const* bindings;
  const OrtValue* const* const* input_values;
  size_t set_count;
  const char* const* input_names;
  size_t input_count;
  const char* const* output_names;
  OrtValue** run_outputs;  ///< scratch for OrtApi::Run; the loop releases what Run puts here
  size_t output_count;
};

/// What one of several concurrent workers needs of its own: an IoBinding per input set, all
/// bound to the worker's own outputs (preallocated when the session's are), plus scratch for
/// OrtApi::Run. Input values are shared: ONNX Runtime only reads them. The worker cycles
/// through the input sets call by call, as the closed loop does, starting at `set`. Made by
/// Session::make_worker.
struct Worker {
  std::vector<detail::Handle<OrtIoBinding>> bindings;  // one per input set
  std::vector<detail::Handle<OrtValue>> outputs;
  std::vector<OrtValue*> run_outputs;
  size_t set = 0;  ///< the input set of the next call
  /// After a call: the next input set.
  void advance() noexcept { set = set + 1 == bindings.size() ? 0 : set + 1; }
};

/// A session plus its bound inputs and outputs. Neither copied nor moved (the name arrays
/// point into it); not thread-safe.
class Session {
 public:
  Session(std::shared_ptr<Runtime> runtime, const std::string& model_path, const SessionConfig& config);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&&) = delete;
  Session& operator=(Session&&) = delete;
  ~Session();

  const std::vector<ValueInfo>& inputs() const noexcept { return inputs_; }
  const std::vector<ValueInfo>& outputs() const noexcept { return outputs_; }
  const Runtime& runtime() const noexcept { return *rt_; }

  /// Use `count` input sets (>= 1), each bound ahead in its own IoBinding; the loops cycle
  /// through them. Drops every input bound so far. This and every bind_* leave the session
  /// unprepared, also when they fail (then nothing else has changed).
  void set_input_set_count(size_t count);
  size_t input_set_count() const noexcept { return bindings_.size(); }

  /// Wrap caller-owned memory as input `name` of input set `set` without copying. The memory
  /// must outlive the session or the next bind of that input.
  void bind_input(size_t set, const std::string& name, int element_type, const std::vector<int64_t>& shape,
                  void* data, size_t nbytes);
  /// Bind a string tensor (copied into ORT-owned memory) as input `name` of set `set`.
  void bind_string_input(size_t set, const std::string& name, const std::vector<int64_t>& shape,
                         const std::vector<std::string>& values);
  /// Bind a sequence of tensors (CreateValue with ONNX_TYPE_SEQUENCE) as input `name` of set
  /// `set`; ORT copies the elements into the sequence.
  void bind_sequence_input(size_t set, const std::string& name, const std::vector<TensorPart>& elements);
  /// Bind a map (CreateValue with ONNX_TYPE_MAP of a 1-D keys tensor and a 1-D values tensor
  /// of the same length) as input `name` of set `set`.
  void bind_map_input(size_t set, const std::string& name, const TensorPart& keys, const TensorPart& values);

  /// Run once to learn the outputs, preallocate them and bind them in every input set's
  /// binding (runs are sequential, so the sets share one set of output buffers), and check
  /// each bound call works. Must be called after every input is bound and before timing.
  void prepare();
  bool prepared() const noexcept { return prepared_; }
  /// True when outputs are preallocated buffers bound once; false when ORT must allocate
  /// them on every bound call (outputs that are not plain tensors, or change shape).
  bool outputs_preallocated() const noexcept { return outputs_preallocated_; }
  // False for a model whose outputs ORT cannot bind at all (see prepare()): measure it with Run.
  bool binding_usable() const noexcept { return binding_usable_; }
  /// Why not, when it is not: ONNX Runtime's message from the bound call that failed.
  const std::string& binding_error() const noexcept { return binding_error_; }
  /// Time taken to create the session, and by the first (cold) Run in prepare().
  int64_t create_ns() const noexcept { return create_ns_; }
  int64_t first_run_ns() const noexcept { return first_run_ns_; }
  /// Calls made outside the measurement loops so far: prepare()'s Run and RunWithBinding
  /// calls, and make_worker()'s. The profiler's trace holds them before the timed calls.
  int64_t untimed_calls() const noexcept { return untimed_calls_; }
  /// Ends ORT profiling (SessionEndProfiling) and returns the trace file's path; empty when
  /// the session was created without a profile prefix.
  std::string end_profiling();

  CallHandles handles() noexcept;

  /// The raw handles a loop that builds its own bindings needs (generate() does). The run
  /// options are the session's: a TerminateOnSigint guard on them stops that loop's calls too.
  const OrtApi* api() const noexcept { return api_; }
  OrtSession* ort_session() const noexcept { return session_.get(); }
  OrtRunOptions* run_options() const noexcept { return run_options_.get(); }
  const OrtMemoryInfo* cpu_memory() const noexcept { return cpu_memory_.get(); }

  /// A worker whose first call uses input set `set`, with outputs of its own, checked by one
  /// bound call per input set.
  /// The session must be prepared. Sessions are safe to Run from several threads at once;
  /// each thread must use its own Worker.
  std::unique_ptr<Worker> make_worker(size_t set);

 private:
  size_t input_index(const std::string& name) const;
  ValueInfo describe(const char* name, const OrtTypeInfo* info, int depth = 0) const;
  void describe_tensor(const OrtTypeInfo* info, ValueInfo& out) const;
  detail::Handle<OrtValue> make_tensor(const TensorPart& part) const;
  void check_set(size_t set) const;
  void set_value(size_t set, size_t i, detail::Handle<OrtValue>&& value) noexcept;
  void bind_outputs(bool preallocated);
  // One call of input set `set` through Run (outputs allocated by ORT and released): its status.
  OrtStatus* run_plain(size_t set);

  std::shared_ptr<Runtime> rt_;
  const OrtApi* api_ = nullptr;
  detail::Handle<OrtSessionOptions> options_;
  detail::Handle<OrtSession> session_;
  detail::Handle<OrtRunOptions> run_options_;
  detail::Handle<OrtMemoryInfo> cpu_memory_;
  std::vector<ValueInfo> inputs_;
  std::vector<ValueInfo> outputs_;
  std::vector<const char*> input_names_;
  std::vector<const char*> output_names_;
  // Per input set: its IoBinding, the values it owns and the array Run takes.
  std::vector<detail::Handle<OrtIoBinding>> bindings_;
  std::vector<OrtIoBinding*> binding_ptrs_;
  std::vector<std::vector<detail::Handle<OrtValue>>> set_values_;
  std::vector<std::vector<const OrtValue*>> set_ptrs_;
  std::vector<const OrtValue* const*> set_arrays_;
  std::vector<detail::Handle<OrtValue>> output_values_;
  std::vector<bool> output_numeric_;
  std::vector<OrtValue*> run_outputs_;
  bool prepared_ = false;
  bool profiling_ = false;
  bool outputs_preallocated_ = false;
  bool binding_usable_ = true;
  std::string binding_error_;
  int64_t create_ns_ = 0;
  int64_t first_run_ns_ = 0;
  int64_t untimed_calls_ = 0;
};

}  // namespace inferspeed
