// Names the stages of a swap for at::RecordFunction observers: `visage bench
// swap --count-ops` counts the ATen ops (and host waits) launched in each.
// With no observer registered a scope costs one check of a global flag.
#pragma once

#include <ATen/record_function.h>

#include <optional>

namespace visage::swap {

class StageScope {
 public:
  explicit StageScope(const char* name) { next(name); }

  // Ends the current stage and starts `name`.
  void next(const char* name) {
    guard_.reset();
    guard_.emplace(at::RecordScope::USER_SCOPE);
    if (guard_->isActive()) guard_->before(name);
  }

 private:
  std::optional<at::RecordFunction> guard_;
};

}  // namespace visage::swap
