// Shared pieces of the visage command-line tool.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace visage::cli {

// Minimal argument reader: `--name value`, `--flag`, and positionals.
class Args {
 public:
  Args(int argc, char** argv, int first);

  bool flag(const std::string& name);
  std::optional<std::string> value(const std::string& name);
  std::string value_or(const std::string& name, const std::string& fallback);
  int int_or(const std::string& name, int fallback);
  const std::vector<std::string>& positionals() const { return positionals_; }
  // Throws visage::Error{bad_input} naming any option nobody asked for.
  void finish() const;

 private:
  std::vector<std::string> tokens_;
  std::vector<bool> used_;
  std::vector<std::string> positionals_;
};

int bench_runtime(Args& args);
int inspect_model(Args& args);
int analyse_images(Args& args);
int bench_landmarks(Args& args);
int bench_analyse(Args& args);

}  // namespace visage::cli
