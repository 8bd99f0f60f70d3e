// visage/error.hpp: the one exception type the library throws.
//
// Every failure that crosses the public API is a visage::Error. Its kind tells
// the caller what went wrong in terms it can act on (fix the input, install a
// model, report a bug); what() is one line meant for a person and names the
// file, model node or frame involved.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace visage {

enum class ErrorKind {
  bad_input,    // the caller's data is wrong: shape, size, corrupt file
  unsupported,  // valid, but not something Visage implements (operator, codec)
  model,        // a model file is missing, corrupt or inconsistent
  io,           // reading or writing a file failed
  resource,     // out of memory, no GPU, device error
  internal,     // a bug in Visage
};

std::string_view to_string(ErrorKind kind) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message);

  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace visage
