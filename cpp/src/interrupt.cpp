#include "inferspeed/interrupt.hpp"

#include <signal.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>

namespace inferspeed {

namespace {

// Up to kSlots loops at once (one per thread measuring); the handler walks the slots.
constexpr int kSlots = 64;
std::array<std::atomic<OrtRunOptions*>, kSlots> g_options{};
std::array<std::atomic<bool>, kSlots> g_fired{};
std::atomic<const OrtApi*> g_api{nullptr};
std::mutex g_install;  // guards g_users and the handler's installation (never in the handler)
int g_users = 0;
struct sigaction g_previous;

void on_sigint(int sig, siginfo_t* info, void* context) {
  const OrtApi* api = g_api.load();
  for (int k = 0; k < kSlots; ++k) {
    OrtRunOptions* options = g_options[static_cast<size_t>(k)].load();
    if (options == nullptr || api == nullptr) continue;
    g_fired[static_cast<size_t>(k)].store(true);
    // Sets a flag ORT checks between nodes; no allocation, no lock.
    OrtStatus* st = api->RunOptionsSetTerminate(options);
    (void)st;  // always null: the call cannot fail (and must not free in a handler)
  }
  // Chain to the previous handler (Python's sets its own flag for the main thread).
  if ((g_previous.sa_flags & SA_SIGINFO) != 0) {
    if (g_previous.sa_sigaction != nullptr) g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
             g_previous.sa_handler != nullptr) {
    g_previous.sa_handler(sig);
  }
}

}  // namespace

TerminateOnSigint::TerminateOnSigint(const OrtApi* api, OrtRunOptions* run_options) {
  std::lock_guard<std::mutex> lock(g_install);
  // A terminate flag left set on these run options (a Ctrl-C that raced the end of an earlier
  // loop) would fail every call at once: clear it before the handler can see the options.
  if (OrtStatus* st = api->RunOptionsUnsetTerminate(run_options)) api->ReleaseStatus(st);
  if (g_users == 0) {
    struct sigaction current;
    std::memset(&current, 0, sizeof current);
    if (sigaction(SIGINT, nullptr, &current) != 0) return;
    // SIG_IGN: Ctrl-C does nothing, so neither do we. SIG_DFL: Ctrl-C ends the process at once,
    // which a handler of ours would prevent (there is no handler to chain to).
    if ((current.sa_flags & SA_SIGINFO) == 0 && (current.sa_handler == SIG_IGN || current.sa_handler == SIG_DFL)) {
      return;
    }
    struct sigaction mine;
    std::memset(&mine, 0, sizeof mine);
    mine.sa_sigaction = on_sigint;
    mine.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&mine.sa_mask);
    g_previous = current;
    if (sigaction(SIGINT, &mine, nullptr) != 0) return;
  }
  for (int k = 0; k < kSlots; ++k) {
    // Only this constructor (under g_install) fills empty slots, so a slot seen empty stays
    // empty until the store below; its fired flag is cleared before the handler can find it.
    if (g_options[static_cast<size_t>(k)].load() != nullptr) continue;
    g_fired[static_cast<size_t>(k)].store(false);
    g_api.store(api);
    g_options[static_cast<size_t>(k)].store(run_options);
    slot_ = k;
    break;
  }
  if (slot_ < 0) {  // every slot taken: no terminate for this loop (Ctrl-C still works)
    if (g_users == 0) sigaction(SIGINT, &g_previous, nullptr);
    return;
  }
  ++g_users;
}

TerminateOnSigint::~TerminateOnSigint() {
  if (slot_ < 0) return;
  std::lock_guard<std::mutex> lock(g_install);
  OrtRunOptions* options = g_options[static_cast<size_t>(slot_)].exchange(nullptr);
  const OrtApi* api = g_api.load();
  if (options != nullptr && api != nullptr && g_fired[static_cast<size_t>(slot_)].load()) {
    // Later runs of the session must not stop at once. (A handler that read the slot just
    // before the exchange and sets the flag after this is undone by the next guard.)
    if (OrtStatus* st = api->RunOptionsUnsetTerminate(options)) api->ReleaseStatus(st);
  }
  if (--g_users == 0) {
    // Restore the previous handler, unless someone replaced ours meanwhile.
    struct sigaction current;
    std::memset(&current, 0, sizeof current);
    if (sigaction(SIGINT, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) != 0 &&
        current.sa_sigaction == on_sigint) {
      sigaction(SIGINT, &g_previous, nullptr);
    }
  }
}

bool TerminateOnSigint::fired() const noexcept {
  return slot_ >= 0 && g_fired[static_cast<size_t>(slot_)].load();
}

}  // namespace inferspeed
