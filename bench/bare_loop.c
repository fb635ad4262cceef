/* The reference for bench/overhead.py: the plainest C loop over ONNX Runtime's C API.
 *
 * bare_open() loads libonnxruntime with dlopen, creates a session (N intra-op threads, graph
 * optimization level ALL) and one float input tensor filled with ones, runs it once with Run
 * and binds that run's output value as the preallocated output of an IoBinding.
 * bare_measure() then times calls back to back, each one bracketed by exactly two
 * clock_gettime(CLOCK_MONOTONIC) reads and nothing else:
 *   mode 0: RunWithBinding on the input and output bound once;
 *   mode 1: Run with the output allocated by ONNX Runtime on each call and released after the
 *           second clock read.
 * bare_close() releases everything. On failure bare_open() returns NULL and bare_measure()
 * returns -1 (0 on success), both with a message in err.
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -shared -fPIC -I<dir of onnxruntime_c_api.h>
 *        bare_loop.c -o bare_loop.so -ldl
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <onnxruntime_c_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The C API version inferspeed requests (onnxruntime >= 1.12); not the header's version. */
#define BARE_ORT_API_VERSION 12

typedef struct bare_ctx {
  void* library;
  const OrtApi* api;
  OrtEnv* env;
  OrtSessionOptions* options;
  OrtSession* session;
  OrtRunOptions* run_options;
  OrtMemoryInfo* memory;
  float* input_data;
  OrtValue* input;
  OrtValue* output; /* from the first Run, bound as the preallocated output */
  OrtIoBinding* binding;
  char* input_name;
  char* output_name;
} bare_ctx;

static inline int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* 0 when status is NULL; otherwise copy its message into err, release it and return -1. */
static int fail(const OrtApi* api, OrtStatus* status, const char* what, char* err, size_t errlen) {
  if (status == NULL) return 0;
  snprintf(err, errlen, "%s: %s", what, api->GetErrorMessage(status));
  api->ReleaseStatus(status);
  return -1;
}

#define CHECK(call)                                                          \
  do {                                                                       \
    if (fail(ctx->api, (call), #call, err, errlen) != 0) return -1;          \
  } while (0)

void bare_close(bare_ctx* ctx) {
  if (ctx == NULL) return;
  const OrtApi* api = ctx->api;
  if (api != NULL) {
    if (ctx->binding != NULL) api->ReleaseIoBinding(ctx->binding);
    if (ctx->output != NULL) api->ReleaseValue(ctx->output);
    if (ctx->input != NULL) api->ReleaseValue(ctx->input);
    if (ctx->memory != NULL) api->ReleaseMemoryInfo(ctx->memory);
    if (ctx->run_options != NULL) api->ReleaseRunOptions(ctx->run_options);
    if (ctx->session != NULL) api->ReleaseSession(ctx->session);
    if (ctx->options != NULL) api->ReleaseSessionOptions(ctx->options);
    if (ctx->env != NULL) api->ReleaseEnv(ctx->env);
  }
  free(ctx->input_data);
  free(ctx->input_name);
  free(ctx->output_name);
  if (ctx->library != NULL) dlclose(ctx->library);
  free(ctx);
}

static char* copy_string(const char* s) {
  const size_t n = strlen(s) + 1;
  char* out = malloc(n);
  if (out != NULL) memcpy(out, s, n);
  return out;
}

static int load_api(bare_ctx* ctx, const char* ort_lib, char* err, size_t errlen) {
  ctx->library = dlopen(ort_lib, RTLD_NOW | RTLD_LOCAL);
  if (ctx->library == NULL) {
    snprintf(err, errlen, "dlopen(%s): %s", ort_lib, dlerror());
    return -1;
  }
  void* symbol = dlsym(ctx->library, "OrtGetApiBase");
  if (symbol == NULL) {
    snprintf(err, errlen, "%s does not export OrtGetApiBase", ort_lib);
    return -1;
  }
  const OrtApiBase* (*get_api_base)(void);
  memcpy(&get_api_base, &symbol, sizeof symbol);
  ctx->api = get_api_base()->GetApi(BARE_ORT_API_VERSION);
  if (ctx->api == NULL) {
    snprintf(err, errlen, "%s does not provide C API version %d", ort_lib, BARE_ORT_API_VERSION);
    return -1;
  }
  return 0;
}

static int open_session(bare_ctx* ctx, const char* model, const int64_t* shape, size_t rank,
                        int threads, char* err, size_t errlen) {
  const OrtApi* api = ctx->api;
  CHECK(api->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "bare_loop", &ctx->env));
  CHECK(api->CreateSessionOptions(&ctx->options));
  CHECK(api->SetIntraOpNumThreads(ctx->options, threads));
  CHECK(api->SetSessionGraphOptimizationLevel(ctx->options, ORT_ENABLE_ALL));
  CHECK(api->CreateSession(ctx->env, model, ctx->options, &ctx->session));
  CHECK(api->CreateRunOptions(&ctx->run_options));
  CHECK(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &ctx->memory));

  size_t count = 1;
  for (size_t d = 0; d < rank; ++d) count *= (size_t)shape[d];
  ctx->input_data = malloc(count * sizeof(float));
  if (ctx->input_data == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t k = 0; k < count; ++k) ctx->input_data[k] = 1.0f;
  CHECK(api->CreateTensorWithDataAsOrtValue(ctx->memory, ctx->input_data, count * sizeof(float),
                                            shape, rank, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                            &ctx->input));

  const char* input_names[1] = {ctx->input_name};
  const char* output_names[1] = {ctx->output_name};
  const OrtValue* inputs[1] = {ctx->input};
  CHECK(api->Run(ctx->session, ctx->run_options, input_names, inputs, 1, output_names, 1,
                 &ctx->output));
  CHECK(api->CreateIoBinding(ctx->session, &ctx->binding));
  CHECK(api->BindInput(ctx->binding, ctx->input_name, ctx->input));
  CHECK(api->BindOutput(ctx->binding, ctx->output_name, ctx->output));
  CHECK(api->RunWithBinding(ctx->session, ctx->run_options, ctx->binding));
  return 0;
}

bare_ctx* bare_open(const char* ort_lib, const char* model, const char* input_name,
                    const int64_t* shape, size_t rank, const char* output_name, int threads,
                    char* err, size_t errlen) {
  bare_ctx* ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  ctx->input_name = copy_string(input_name);
  ctx->output_name = copy_string(output_name);
  if (ctx->input_name == NULL || ctx->output_name == NULL) {
    snprintf(err, errlen, "out of memory");
  } else if (load_api(ctx, ort_lib, err, errlen) == 0 &&
             open_session(ctx, model, shape, rank, threads, err, errlen) == 0) {
    return ctx;
  }
  bare_close(ctx);
  return NULL;
}

/* n calls in `mode`; their latencies go to out (NULL: warm-up, nothing stored). */
static int loop(bare_ctx* ctx, int mode, int64_t n, int64_t* out, char* err, size_t errlen) {
  const OrtApi* api = ctx->api;
  const char* input_names[1] = {ctx->input_name};
  const char* output_names[1] = {ctx->output_name};
  const OrtValue* inputs[1] = {ctx->input};
  OrtStatus* status = NULL;
  if (mode == 0) {
    for (int64_t i = 0; i < n && status == NULL; ++i) {
      const int64_t t0 = now_ns();
      status = api->RunWithBinding(ctx->session, ctx->run_options, ctx->binding);
      const int64_t t1 = now_ns();
      if (out != NULL) out[i] = t1 - t0;
    }
  } else {
    for (int64_t i = 0; i < n && status == NULL; ++i) {
      OrtValue* output = NULL;
      const int64_t t0 = now_ns();
      status = api->Run(ctx->session, ctx->run_options, input_names, inputs, 1, output_names, 1,
                        &output);
      const int64_t t1 = now_ns();
      if (out != NULL) out[i] = t1 - t0;
      if (output != NULL) api->ReleaseValue(output);
    }
  }
  return fail(api, status, mode == 0 ? "RunWithBinding" : "Run", err, errlen);
}

int bare_measure(bare_ctx* ctx, int mode, int64_t warmup_iters, int64_t iters,
                 int64_t* out_samples_ns, char* err, size_t errlen) {
  if (mode != 0 && mode != 1) {
    snprintf(err, errlen, "mode must be 0 (RunWithBinding) or 1 (Run), got %d", mode);
    return -1;
  }
  if (loop(ctx, mode, warmup_iters, NULL, err, errlen) != 0) return -1;
  return loop(ctx, mode, iters, out_samples_ns, err, errlen);
}
