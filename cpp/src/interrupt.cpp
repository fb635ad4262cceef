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
std::mutex g_install;  // guards g_users and the handlers' installation (never in a handler)
int g_users = 0;

// The signals that stop a call in progress, each with the handler it had before ours (chained
// to) and whether ours is installed.
struct Watched {
  int signal;
  struct sigaction previous;
  bool installed;
};
std::array<Watched, 2> g_watched{{{SIGINT, {}, false}, {SIGTERM, {}, false}}};

void on_signal(int sig, siginfo_t* info, void* context) {
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
  for (const Watched& w : g_watched) {
    if (w.signal != sig || !w.installed) continue;
    if ((w.previous.sa_flags & SA_SIGINFO) != 0) {
      if (w.previous.sa_sigaction != nullptr) w.previous.sa_sigaction(sig, info, context);
    } else if (w.previous.sa_handler != SIG_DFL && w.previous.sa_handler != SIG_IGN &&
               w.previous.sa_handler != nullptr) {
      w.previous.sa_handler(sig);
    }
  }
}

// Install ours for `w.signal` when it has a handler of its own to chain to. SIG_IGN: the
// signal does nothing, so neither do we. SIG_DFL: it ends the process at once, which a handler
// of ours would prevent.
void install(Watched& w) {
  struct sigaction current;
  std::memset(&current, 0, sizeof current);
  if (sigaction(w.signal, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) == 0 && (current.sa_handler == SIG_IGN || current.sa_handler == SIG_DFL)) {
    return;
  }
  struct sigaction mine;
  std::memset(&mine, 0, sizeof mine);
  mine.sa_sigaction = on_signal;
  mine.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&mine.sa_mask);
  w.previous = current;
  w.installed = sigaction(w.signal, &mine, nullptr) == 0;
}

// Restore the previous handler, unless someone replaced ours meanwhile.
void uninstall(Watched& w) {
  if (!w.installed) return;
  struct sigaction current;
  std::memset(&current, 0, sizeof current);
  if (sigaction(w.signal, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) != 0 &&
      current.sa_sigaction == on_signal) {
    sigaction(w.signal, &w.previous, nullptr);
  }
  w.installed = false;
}

}  // namespace

TerminateOnSigint::TerminateOnSigint(const OrtApi* api, OrtRunOptions* run_options) {
  std::lock_guard<std::mutex> lock(g_install);
  // A terminate flag left set on these run options (a signal that raced the end of an earlier
  // loop) would fail every call at once: clear it before the handler can see the options.
  if (OrtStatus* st = api->RunOptionsUnsetTerminate(run_options)) api->ReleaseStatus(st);
  if (g_users == 0) {
    for (Watched& w : g_watched) install(w);
    bool any = false;
    for (const Watched& w : g_watched) any = any || w.installed;
    if (!any) return;
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
  if (slot_ < 0) {  // every slot taken: no terminate for this loop (the signal still works)
    if (g_users == 0) {
      for (Watched& w : g_watched) uninstall(w);
    }
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
    for (Watched& w : g_watched) uninstall(w);
  }
}

bool TerminateOnSigint::fired() const noexcept {
  return slot_ >= 0 && g_fired[static_cast<size_t>(slot_)].load();
}

}  // namespace inferspeed
