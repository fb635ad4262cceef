// Registration functions of the _core module; each bind_*.cpp maps one part of the core.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "inferspeed/loops.hpp"
#include "inferspeed/session.hpp"

namespace inferspeed::bindings {

void register_errors(pybind11::module_& m);
void register_runtime(pybind11::module_& m);
void register_session(pybind11::module_& m);
void register_callable(pybind11::module_& m);
/// Adds Session.generate: call after register_session.
void register_generation(pybind11::module_& m);

/// A session was used from a second thread while one of its loops ran (translated to
/// inferspeed.errors.SessionInUseError).
class SessionInUse : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The Python Session (bind_session.cpp; bind_generation.cpp adds a method): a core Session
/// plus references to the numpy arrays its inputs point into, so the memory ORT reads stays
/// alive as long as the session can run. `busy` is held by whatever uses or changes the
/// session: its loops run without the GIL, so a second Python thread could otherwise re-bind
/// inputs or drop input sets under a running loop.
struct PySession {
  std::unique_ptr<Session> session;
  std::vector<pybind11::object> keep_alive;
  std::mutex busy;
};

/// Holds a session's `busy` for one call; a session already in use throws SessionInUse at once
/// (never waits: a loop can run for minutes).
class InUse {
 public:
  explicit InUse(PySession& s) : lock_(s.busy, std::try_to_lock) {
    if (!lock_.owns_lock()) {
      throw SessionInUse("this session is measuring in another thread; use one session per thread");
    }
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

/// Between chunks of a loop: take the GIL (re-entrant if held) just long enough to run Python's
/// signal handlers. KeyboardInterrupt (Ctrl-C) stops the loop, which keeps what it measured;
/// any other exception a handler raised (a SIGTERM handler's SystemExit, a SIGALRM handler's
/// TimeoutError) is thrown on as error_already_set, and the caller sees it raised.
inline bool python_signals_ok() {
  pybind11::gil_scoped_acquire acquire;
  if (PyErr_CheckSignals() == 0) return true;
  if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) == 0) throw pybind11::error_already_set();
  PyErr_Clear();
  return false;
}

/// Move a vector into a numpy array without copying (the array owns it).
template <class T>
pybind11::array_t<T> to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  pybind11::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return pybind11::array_t<T>({static_cast<pybind11::ssize_t>(owned->size())}, {sizeof(T)}, owned->data(),
                              free_when_done);
}

/// A closed or callable loop's result as the dict the Python side reads: samples_ns (numpy,
/// no copy), start_ns, end_ns, interrupted, capped.
inline pybind11::dict loop_result_to_dict(LoopResult&& r) {
  pybind11::dict d;
  d["start_ns"] = r.start_ns;
  d["end_ns"] = r.end_ns;
  d["interrupted"] = r.interrupted;
  d["capped"] = r.capped;
  d["samples_ns"] = to_numpy(std::move(r.samples_ns));
  return d;
}

}  // namespace inferspeed::bindings
