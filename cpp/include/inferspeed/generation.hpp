// Generation with a transformer decoder that has a KV cache: a prefill step over the prompt, then
// one decode step per token, each step's RunWithBinding timed alone, the greedy choice of the
// next token timed apart. The cache lives in buffers preallocated for the whole generation, and
// ONNX Runtime writes each step's present straight into the buffer bound as the next step's
// past: nothing is copied between steps.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "inferspeed/interrupt.hpp"
#include "inferspeed/loops.hpp"
#include "inferspeed/session.hpp"

namespace inferspeed {

/// One cache tensor: a past input and the present output that becomes the next step's past.
struct CacheTensorSpec {
  std::string past;
  std::string present;
  int element_type = 1;        ///< ONNXTensorElementDataType (1 float32, 10 float16, 16 bfloat16, ...)
  std::vector<int64_t> shape;  ///< at batch 1 and sequence length 1 ...
  int batch_axis = 0;          ///< ... with this axis scaled by the batch
  int seq_axis = 2;            ///< ... and this one the sequence length
};

/// An input bound to one value for the whole generation (its bytes are copied in).
struct FixedInput {
  std::string name;
  int element_type = 0;
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;
};

/// What to generate, and with which inputs and outputs of the model. Names left empty are
/// inputs the model does not have. Integer inputs are int64 (7) or int32 (6).
///
/// Step 0 (the prefill) feeds the prompt, input_ids [batch, prompt_tokens], with a past of
/// `prefill_past` positions (zeros; a dummy that merged decoders ignore: it is not part of the
/// sequence, so the mask and the positions cover the prompt alone, and the presents hold the
/// prompt's positions); steps 1 .. gen_tokens-1 feed the token chosen at the step before,
/// input_ids [batch, 1]. The attention mask is ones over every position so far ([batch, total]),
/// position_ids [batch, n] and cache_position [n] count on from the positions before the step,
/// use_cache_branch (bool [1]) is false at the prefill and true after.
/// An input holding a length that changes with every step: every element is `past + n +
/// offset` (`past` the positions already in the cache, `n` the step's tokens).
/// GroupQueryAttention's `seqlens_k` is [batch] with offset -1, `total_sequence_length` a
/// scalar with offset 0.
struct LengthInputSpec {
  std::string name;
  int element_type = 6;        ///< int32 or int64
  std::vector<int64_t> shape;  ///< at batch 1 ...
  int batch_axis = -1;         ///< ... with this axis scaled by the batch (-1: none)
  int64_t offset = 0;
};

struct GenerationSpec {
  std::string input_ids;
  int ids_type = 7;
  std::string attention_mask;
  int mask_type = 7;
  std::string position_ids;
  int position_type = 7;
  std::string cache_position;    ///< its element type is the model's
  std::string use_cache_branch;
  std::vector<CacheTensorSpec> caches;
  std::string logits;            ///< [batch, ..., vocab], float32, float16 or bfloat16
  int64_t vocab = 0;             ///< > 0: the logits' last dim must be this
  /// One buffer per cache tensor of `max_length` positions (or, with max_length 0, the
  /// generation's), bound as both past and present (onnxruntime-genai's
  /// past_present_share_buffer); otherwise two buffers per cache tensor, swapped step by step.
  bool share_buffer = false;
  int64_t max_length = 0;        ///< > 0: the most positions the model takes
  int64_t prefill_past = 0;
  std::vector<FixedInput> extra_inputs;
  std::vector<LengthInputSpec> lengths;

  std::vector<int64_t> prompt_ids;  ///< [batch, prompt_tokens], row-major
  int64_t batch = 1;
  int64_t prompt_tokens = 0;
  int64_t gen_tokens = 0;           ///< tokens per generation (the prefill chooses the first)
  int64_t warmup = 1;               ///< generations run first and not kept
  /// Repetitions stop after max_repetitions, or at the first repetition's end once max_ns have
  /// passed since the first began (<= 0: no such limit; one of them must be set). At least one
  /// repetition runs.
  int64_t max_repetitions = 0;
  int64_t max_ns = 0;
};

/// The generations measured. A repetition has gen_tokens steps; step 0 is the prefill. Arrays
/// are row-major; a repetition cut short by the hook has -1 for the steps it did not run.
struct GenerationResult {
  int64_t repetitions = 0;
  int64_t batch = 0;
  int64_t gen_tokens = 0;
  std::vector<int64_t> step_ns;        ///< [repetitions, gen_tokens]: each RunWithBinding
  std::vector<int64_t> sample_ns;      ///< [repetitions, gen_tokens]: each greedy choice
  std::vector<int64_t> tokens;         ///< [repetitions, batch, gen_tokens]
  /// [repetitions]: each generation's wall time (binding, runs and choices; not the hook).
  std::vector<int64_t> generation_ns;
  std::vector<int64_t> warmup_ns;      ///< the same, of each warm-up generation
  int64_t last_steps = 0;              ///< steps the last repetition ran
  int64_t start_ns = 0;                ///< clock at the first measured generation's start
  int64_t end_ns = 0;                  ///< clock after the last one
  bool interrupted = false;            ///< the hook (or Ctrl-C) stopped it
  bool capped = false;                 ///< stopped at kMaxSamples steps, before the limits
  std::vector<int64_t> prefill_logits_shape;
  std::vector<int64_t> decode_logits_shape;  ///< empty when no decode step ran
  /// Outputs other than the presents that were written into buffers of ours once their
  /// shapes were known (the others: allocated by ONNX Runtime at each step).
  std::vector<std::string> preallocated_outputs;
  /// [caches, 2]: each cache tensor's two buffers (one buffer twice with share_buffer).
  std::vector<uint64_t> buffer_addresses;
  /// [repetitions, caches]: where ONNX Runtime's bound present of each cache tensor lay after
  /// each repetition's last step (one of that tensor's buffers: it wrote there, nothing copied).
  std::vector<uint64_t> present_addresses;
  int64_t cache_bytes = 0;             ///< bytes of the cache buffers
};

/// Run `spec.warmup` generations, then repetitions until a limit, calling `between_steps` after
/// every step (outside the timed regions; false stops: what was measured is kept). SIGINT and
/// SIGTERM also stop a step in progress (TerminateOnSigint). The session needs no prepare().
/// Throws std::invalid_argument for a spec that does not fit the model, OrtError (with the step
/// and the past length) when a step fails.
/// A generation set up once (names checked, cache buffers allocated) and run again and again:
/// the output buffers it learns in its first whole generation serve every later run, so each
/// run's generations are alike. The session must outlive it; one run at a time.
class Generation {
 public:
  /// Checks `spec` (its limits too: give the first run's) and prepares the buffers.
  Generation(Session& session, GenerationSpec spec);
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;
  Generation(Generation&&) = delete;
  Generation& operator=(Generation&&) = delete;

  /// `warmup` generations not kept, then repetitions until `max_repetitions` or `max_ns`
  /// (at least one of them), the hook after every step.
  GenerationResult run(int64_t warmup, int64_t max_repetitions, int64_t max_ns, const ChunkHook& between_steps);

  /// One generation for a load scenario, on the calling thread (the Generations of one
  /// session may serve at once, each on a thread of its own): a prompt of the first
  /// `prompt_tokens` ids of each row of the spec's prompt, `gen_tokens` output tokens (each
  /// from 1 to the spec's: the buffers are sized for those). `token_ns[s]` gets the clock
  /// when step s's token was chosen, `step_ns[s]` its call (the spec's gen_tokens entries
  /// each) and `tokens` the ids chosen ([batch, the spec's gen_tokens]); those of steps not
  /// run are left as they were. `keep_going` is asked after every step (false stops); `guard`
  /// is the caller's, on the session's run options. Returns the steps run. Run a whole
  /// generation (run()) first: it learns the output buffers every later one uses (a prefill
  /// shorter than the spec's writes its outputs where ONNX Runtime allocates them). Throws
  /// std::invalid_argument for lengths out of range, else as run() does.
  int64_t serve(int64_t prompt_tokens, int64_t gen_tokens, int64_t* token_ns, int64_t* step_ns, int64_t* tokens,
                const ChunkHook& keep_going, const TerminateOnSigint& guard);

  /// The spec's prompt tokens and tokens each generation outputs (the most a request may
  /// take), and its batch.
  int64_t prompt_tokens() const noexcept;
  int64_t gen_tokens() const noexcept;
  int64_t batch() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One Generation of `spec`, run once with the spec's limits.
GenerationResult generate(Session& session, const GenerationSpec& spec, const ChunkHook& between_steps);

/// Bytes of one element of an ONNX tensor element type; 0 for strings and unknown types.
size_t element_bytes(int element_type) noexcept;

/// IEEE half precision bits to float.
float half_to_float(uint16_t bits) noexcept;

}  // namespace inferspeed
