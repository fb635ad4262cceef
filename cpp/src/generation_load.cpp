#include "inferspeed/generation_load.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "inferspeed/clock.hpp"
#include "inferspeed/crew.hpp"
#include "inferspeed/interrupt.hpp"

namespace inferspeed {

namespace {

// Each request's lengths: none given, or one each per request within the streams' own.
void check_lengths(const GenerationLoadSpec& spec, int64_t prompt_max, int64_t gen_max) {
  if (spec.prompt_tokens.empty() && spec.gen_tokens.empty()) return;
  const size_t n = spec.arrivals_ns.size();
  if (spec.prompt_tokens.size() != n || spec.gen_tokens.size() != n) {
    throw std::invalid_argument("give every request's prompt and output tokens (one each per arrival), or none");
  }
  for (size_t i = 0; i < n; ++i) {
    if (spec.prompt_tokens[i] < 1 || spec.prompt_tokens[i] > prompt_max || spec.gen_tokens[i] < 1 ||
        spec.gen_tokens[i] > gen_max) {
      throw std::invalid_argument("request " + std::to_string(i) + ": a prompt of " +
                                  std::to_string(spec.prompt_tokens[i]) + " tokens and " +
                                  std::to_string(spec.gen_tokens[i]) + " output tokens do not fit streams of " +
                                  std::to_string(prompt_max) + " and " + std::to_string(gen_max));
    }
  }
}

void check_streams(const std::vector<Generation*>& streams, const GenerationLoadSpec& spec) {
  if (streams.empty()) throw std::invalid_argument("at least one stream is needed");
  for (const Generation* g : streams) {
    if (g == nullptr) throw std::invalid_argument("null stream");
    if (g->gen_tokens() != streams.front()->gen_tokens() || g->batch() != streams.front()->batch() ||
        g->prompt_tokens() != streams.front()->prompt_tokens()) {
      throw std::invalid_argument("every stream must generate the same number of tokens, with the same batch and "
                                  "prompt");
    }
  }
  check_lengths(spec, streams.front()->prompt_tokens(), streams.front()->gen_tokens());
  for (size_t i = 0; i < spec.arrivals_ns.size(); ++i) {
    if (spec.arrivals_ns[i] < 0 || (i > 0 && spec.arrivals_ns[i] < spec.arrivals_ns[i - 1])) {
      throw std::invalid_argument("arrival times must be non-negative and in order");
    }
  }
  if (spec.spin_ns < 0 || spec.stop_after_ns < 0 || spec.chunk_ns <= 0) {
    throw std::invalid_argument("spin_ns and stop_after_ns must not be negative, chunk_ns must be positive");
  }
}

// now + ns without overflow (INT64_MAX: no limit).
int64_t deadline_after(int64_t now, int64_t ns) noexcept { return now > INT64_MAX - ns ? INT64_MAX : now + ns; }

}  // namespace

GenerationLoadResult run_generation_load(Session& session, const std::vector<Generation*>& streams,
                                         const GenerationLoadSpec& spec, const ChunkHook& between_chunks) {
  check_streams(streams, spec);
  const size_t n = spec.arrivals_ns.size();
  const int64_t g = streams.front()->gen_tokens();
  const int64_t p = streams.front()->prompt_tokens();
  const bool varied = !spec.gen_tokens.empty();
  const auto per_request = static_cast<size_t>(g);
  const auto ids_per_request = per_request * static_cast<size_t>(streams.front()->batch());
  GenerationLoadResult r;
  r.gen_tokens = g;
  r.batch = streams.front()->batch();
  r.tokens.assign(n * ids_per_request, -1);
  r.start_ns.assign(n, -1);
  r.token_ns.assign(n * per_request, -1);
  r.step_ns.assign(n * per_request, -1);
  r.stream.assign(n, -1);
  r.waited.assign(n, 0);
  std::atomic<size_t> next{0};
  Crew crew(streams.size());
  // Ctrl-C also stops a step in progress; every stream runs on the session's run options.
  const TerminateOnSigint guard(session.api(), session.run_options());
  const ChunkHook keep_going = [&crew] { return !crew.stopping(); };

  auto serve = [&](size_t index) {
    Generation& stream = *streams[index];
    const int64_t origin = crew.origin();  // fixed once every stream's thread is running
    const int64_t stop_at = spec.stop_after_ns > 0 ? deadline_after(origin, spec.stop_after_ns) : INT64_MAX;
    while (!crew.stopping()) {
      const size_t i = next.fetch_add(1);
      if (i >= n) break;
      const int64_t arrival = origin + spec.arrivals_ns[i];
      const bool waited = now_ns() < arrival;
      if (waited) crew.wait_until(arrival, spec.spin_ns);
      const int64_t t0 = now_ns();
      if (crew.stopping() || t0 >= stop_at) break;
      int64_t* times = r.token_ns.data() + i * per_request;
      const int64_t want = varied ? spec.gen_tokens[i] : g;
      const int64_t steps = stream.serve(varied ? spec.prompt_tokens[i] : p, want, times,
                                         r.step_ns.data() + i * per_request, r.tokens.data() + i * ids_per_request,
                                         keep_going, guard);
      for (int64_t s = 0; s < steps; ++s) times[s] -= origin;
      r.start_ns[i] = t0 - origin;
      r.stream[i] = static_cast<int32_t>(index);
      r.waited[i] = waited ? 1 : 0;
      if (steps < want) break;  // stopped in the middle: a stop was asked for
    }
  };

  r.interrupted = run_on_threads(streams.size(), serve, crew, spec.chunk_ns, between_chunks);
  r.origin_ns = crew.origin();
  r.ready_ns = crew.ready_ns();
  if (guard.fired()) {
    r.interrupted = true;
    if (between_chunks) between_chunks();  // consume the caller's pending Ctrl-C
  }
  return r;
}

}  // namespace inferspeed
