/* The reference for bench/generation_overhead.py: the plainest C greedy generation loop over
 * ONNX Runtime's C API, for a decoder exported by optimum (GPT-2 style names).
 *
 * Inputs input_ids [1, n] int64, attention_mask [1, past + n] int64, position_ids [1, n] int64,
 * past_key_values.<i>.key/value [1, heads, past, head_size] float; outputs logits [1, n, vocab]
 * float and present.<i>.key/value [1, heads, past + n, head_size] float.
 *
 * bare_gen_open() loads libonnxruntime with dlopen and creates a session (N intra-op threads,
 * graph optimization level ALL), two buffers of the longest cache per cache tensor and the
 * logits buffers. bare_gen_run() makes one generation of batch 1: a prefill of the prompt's P
 * tokens with an empty past, then G - 1 steps of one token. Every step binds its inputs and
 * outputs through one IoBinding as OrtValues over those buffers: the present of each step is
 * written by ONNX Runtime into the buffer the next step binds as its past (nothing is
 * copied), and only RunWithBinding lies between the step's two clock_gettime(CLOCK_MONOTONIC)
 * reads; the next token is the argmax of the last position's logits. bare_gen_close()
 * releases everything. On failure bare_gen_open() returns NULL and bare_gen_run() -1 (0 on
 * success), both with a message in err.
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -shared -fPIC -I<dir of onnxruntime_c_api.h>
 *        bare_decode.c -o bare_decode.so -ldl
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <onnxruntime_c_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BARE_ORT_API_VERSION 12
#define NAME_LEN 64

typedef struct bare_gen {
  void* library;
  const OrtApi* api;
  OrtEnv* env;
  OrtSessionOptions* options;
  OrtSession* session;
  OrtRunOptions* run_options;
  OrtMemoryInfo* memory;
  OrtIoBinding* binding;
  int layers, heads, head_size, vocab, max_positions;
  float** cache[2];     /* [buffer][layer * 2 + key/value]: heads * max_positions * head_size each,
                           one allocation per cache tensor */
  float* logits;        /* max_positions * vocab */
  int64_t* ids;         /* max_positions */
  int64_t* mask;        /* max_positions, all ones */
  int64_t* positions;   /* max_positions */
  char (*past_names)[2][NAME_LEN];
  char (*present_names)[2][NAME_LEN];
  OrtValue** step_values; /* the values bound for one step, released after it */
  size_t step_count;
} bare_gen;

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

static int fail(const OrtApi* api, OrtStatus* status, const char* what, char* err, size_t errlen) {
  if (status == NULL) return 0;
  snprintf(err, errlen, "%s: %s", what, api->GetErrorMessage(status));
  api->ReleaseStatus(status);
  return -1;
}

#define CHECK(call)                                                          \
  do {                                                                       \
    if (fail(g->api, (call), #call, err, errlen) != 0) return -1;            \
  } while (0)

static void release_step(bare_gen* g) {
  for (size_t k = 0; k < g->step_count; ++k) g->api->ReleaseValue(g->step_values[k]);
  g->step_count = 0;
}

void bare_gen_close(bare_gen* g) {
  if (g == NULL) return;
  const OrtApi* api = g->api;
  if (api != NULL) {
    release_step(g);
    if (g->binding != NULL) api->ReleaseIoBinding(g->binding);
    if (g->memory != NULL) api->ReleaseMemoryInfo(g->memory);
    if (g->run_options != NULL) api->ReleaseRunOptions(g->run_options);
    if (g->session != NULL) api->ReleaseSession(g->session);
    if (g->options != NULL) api->ReleaseSessionOptions(g->options);
    if (g->env != NULL) api->ReleaseEnv(g->env);
  }
  for (int b = 0; b < 2; ++b) {
    for (int t = 0; g->cache[b] != NULL && t < 2 * g->layers; ++t) free(g->cache[b][t]);
    free(g->cache[b]);
  }
  free(g->logits);
  free(g->ids);
  free(g->mask);
  free(g->positions);
  free(g->past_names);
  free(g->present_names);
  free(g->step_values);
  if (g->library != NULL) dlclose(g->library);
  free(g);
}

static int load_api(bare_gen* g, const char* ort_lib, char* err, size_t errlen) {
  g->library = dlopen(ort_lib, RTLD_NOW | RTLD_LOCAL);
  if (g->library == NULL) {
    snprintf(err, errlen, "dlopen(%s): %s", ort_lib, dlerror());
    return -1;
  }
  void* symbol = dlsym(g->library, "OrtGetApiBase");
  if (symbol == NULL) {
    snprintf(err, errlen, "%s does not export OrtGetApiBase", ort_lib);
    return -1;
  }
  const OrtApiBase* (*get_api_base)(void);
  memcpy(&get_api_base, &symbol, sizeof symbol);
  g->api = get_api_base()->GetApi(BARE_ORT_API_VERSION);
  if (g->api == NULL) {
    snprintf(err, errlen, "%s does not provide C API version %d", ort_lib, BARE_ORT_API_VERSION);
    return -1;
  }
  return 0;
}

static int allocate(bare_gen* g, char* err, size_t errlen) {
  const size_t cache = (size_t)g->heads * (size_t)g->max_positions * (size_t)g->head_size;
  int cache_ok = 1;
  for (int b = 0; b < 2; ++b) {
    g->cache[b] = calloc((size_t)(2 * g->layers), sizeof(float*));
    cache_ok = cache_ok && g->cache[b] != NULL;
    for (int t = 0; cache_ok && t < 2 * g->layers; ++t) {
      g->cache[b][t] = calloc(cache, sizeof(float));
      cache_ok = g->cache[b][t] != NULL;
    }
  }
  g->logits = calloc((size_t)g->max_positions * (size_t)g->vocab, sizeof(float));
  g->ids = calloc((size_t)g->max_positions, sizeof(int64_t));
  g->mask = calloc((size_t)g->max_positions, sizeof(int64_t));
  g->positions = calloc((size_t)g->max_positions, sizeof(int64_t));
  g->past_names = calloc((size_t)g->layers, sizeof *g->past_names);
  g->present_names = calloc((size_t)g->layers, sizeof *g->present_names);
  g->step_values = calloc((size_t)(4 * g->layers + 4), sizeof(OrtValue*));
  if (g->logits == NULL || g->ids == NULL || g->mask == NULL || g->positions == NULL || g->past_names == NULL ||
      g->present_names == NULL || g->step_values == NULL || !cache_ok) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (int i = 0; i < g->max_positions; ++i) g->mask[i] = 1;
  for (int l = 0; l < g->layers; ++l) {
    snprintf(g->past_names[l][0], NAME_LEN, "past_key_values.%d.key", l);
    snprintf(g->past_names[l][1], NAME_LEN, "past_key_values.%d.value", l);
    snprintf(g->present_names[l][0], NAME_LEN, "present.%d.key", l);
    snprintf(g->present_names[l][1], NAME_LEN, "present.%d.value", l);
  }
  return 0;
}

bare_gen* bare_gen_open(const char* ort_lib, const char* model, int threads, int layers, int heads, int head_size,
                        int vocab, int max_positions, char* err, size_t errlen) {
  bare_gen* g = calloc(1, sizeof *g);
  if (g == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  g->layers = layers;
  g->heads = heads;
  g->head_size = head_size;
  g->vocab = vocab;
  g->max_positions = max_positions;
  if (load_api(g, ort_lib, err, errlen) != 0 || allocate(g, err, errlen) != 0) {
    bare_gen_close(g);
    return NULL;
  }
  const OrtApi* api = g->api;
  OrtStatus* st = api->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "bare_decode", &g->env);
  if (st == NULL) st = api->CreateSessionOptions(&g->options);
  if (st == NULL) st = api->SetIntraOpNumThreads(g->options, threads);
  if (st == NULL) st = api->SetSessionGraphOptimizationLevel(g->options, ORT_ENABLE_ALL);
  if (st == NULL) st = api->CreateSession(g->env, model, g->options, &g->session);
  if (st == NULL) st = api->CreateRunOptions(&g->run_options);
  if (st == NULL) st = api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &g->memory);
  if (st == NULL) st = api->CreateIoBinding(g->session, &g->binding);
  if (fail(api, st, "creating the session", err, errlen) != 0) {
    bare_gen_close(g);
    return NULL;
  }
  return g;
}

/* An OrtValue over `data` of `shape`, bound as input (or output) `name`; kept for release. */
static int bind(bare_gen* g, const char* name, int output, void* data, size_t bytes, const int64_t* shape,
                size_t rank, ONNXTensorElementDataType type, char* err, size_t errlen) {
  OrtValue* v = NULL;
  CHECK(g->api->CreateTensorWithDataAsOrtValue(g->memory, data, bytes, shape, rank, type, &v));
  g->step_values[g->step_count++] = v;
  if (output) {
    CHECK(g->api->BindOutput(g->binding, name, v));
  } else {
    CHECK(g->api->BindInput(g->binding, name, v));
  }
  return 0;
}

/* Bind step inputs and outputs: n tokens after a past of `past`, past in buffer `cur`. */
static int bind_step(bare_gen* g, int past, int n, int cur, char* err, size_t errlen) {
  const ONNXTensorElementDataType i64 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
  const ONNXTensorElementDataType f32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  const int64_t ids_shape[2] = {1, n};
  const int64_t mask_shape[2] = {1, past + n};
  release_step(g);
  for (int i = 0; i < n; ++i) g->positions[i] = past + i;
  if (bind(g, "input_ids", 0, g->ids, (size_t)n * 8, ids_shape, 2, i64, err, errlen) != 0 ||
      bind(g, "attention_mask", 0, g->mask, (size_t)(past + n) * 8, mask_shape, 2, i64, err, errlen) != 0 ||
      bind(g, "position_ids", 0, g->positions, (size_t)n * 8, ids_shape, 2, i64, err, errlen) != 0) {
    return -1;
  }
  const int64_t logits_shape[3] = {1, n, g->vocab};
  if (bind(g, "logits", 1, g->logits, (size_t)n * (size_t)g->vocab * 4, logits_shape, 3, f32, err, errlen) != 0) {
    return -1;
  }
  for (int l = 0; l < g->layers; ++l) {
    for (int kv = 0; kv < 2; ++kv) {
      const int64_t past_shape[4] = {1, g->heads, past, g->head_size};
      const int64_t present_shape[4] = {1, g->heads, past + n, g->head_size};
      float* from = g->cache[cur][2 * l + kv];
      float* to = g->cache[1 - cur][2 * l + kv];
      const size_t row = (size_t)g->heads * (size_t)g->head_size * 4;
      if (bind(g, g->past_names[l][kv], 0, from, row * (size_t)past, past_shape, 4, f32, err, errlen) != 0 ||
          bind(g, g->present_names[l][kv], 1, to, row * (size_t)(past + n), present_shape, 4, f32, err, errlen) !=
              0) {
        return -1;
      }
    }
  }
  return 0;
}

static int64_t argmax_last(const bare_gen* g, int n) {
  const float* row = g->logits + (size_t)(n - 1) * (size_t)g->vocab;
  int64_t best = 0;
  for (int v = 1; v < g->vocab; ++v) {
    if (row[v] > row[best]) best = v;
  }
  return best;
}

int bare_gen_run(bare_gen* g, const int64_t* prompt, int prompt_tokens, int gen_tokens, int64_t* step_ns,
                 int64_t* tokens, char* err, size_t errlen) {
  if (prompt_tokens + gen_tokens - 1 > g->max_positions || gen_tokens < 1) {
    snprintf(err, errlen, "%d + %d - 1 positions exceed the %d allocated", prompt_tokens, gen_tokens,
             g->max_positions);
    return -1;
  }
  memcpy(g->ids, prompt, (size_t)prompt_tokens * sizeof(int64_t));
  int past = 0, n = prompt_tokens, cur = 0;
  for (int step = 0; step < gen_tokens; ++step) {
    if (bind_step(g, past, n, cur, err, errlen) != 0) return -1;
    const int64_t t0 = now_ns();
    OrtStatus* st = g->api->RunWithBinding(g->session, g->run_options, g->binding);
    const int64_t t1 = now_ns();
    if (fail(g->api, st, "RunWithBinding", err, errlen) != 0) return -1;
    step_ns[step] = t1 - t0;
    tokens[step] = argmax_last(g, n);
    g->ids[0] = tokens[step];
    past += n;
    n = 1;
    cur = 1 - cur;
  }
  return 0;
}
