#include "visage/error.hpp"

namespace visage {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::bad_input: return "bad input";
    case ErrorKind::unsupported: return "unsupported";
    case ErrorKind::model: return "model error";
    case ErrorKind::io: return "i/o error";
    case ErrorKind::resource: return "resource error";
    case ErrorKind::internal: return "internal error";
  }
  return "error";
}

Error::Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

}  // namespace visage
