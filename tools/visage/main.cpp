// visage: the command-line front end. It uses only the public API.
#include <algorithm>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "visage/error.hpp"

namespace visage::cli {

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) tokens_.emplace_back(argv[i]);
  used_.assign(tokens_.size(), false);
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i].rfind("--", 0) != 0) positionals_.push_back(tokens_[i]);
}

bool Args::flag(const std::string& name) {
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] == name) {
      used_[i] = true;
      return true;
    }
  return false;
}

std::optional<std::string> Args::value(const std::string& name) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i] != name) continue;
    if (i + 1 >= tokens_.size()) throw Error(ErrorKind::bad_input, "option " + name + " needs a value");
    used_[i] = used_[i + 1] = true;
    std::string v = tokens_[i + 1];
    positionals_.erase(std::remove(positionals_.begin(), positionals_.end(), v), positionals_.end());
    return v;
  }
  return std::nullopt;
}

std::string Args::value_or(const std::string& name, const std::string& fallback) {
  auto v = value(name);
  return v ? *v : fallback;
}

int Args::int_or(const std::string& name, int fallback) {
  auto v = value(name);
  if (!v) return fallback;
  try {
    return std::stoi(*v);
  } catch (const std::exception&) {
    throw Error(ErrorKind::bad_input, "option " + name + " needs a whole number, got '" + *v + "'");
  }
}

void Args::finish() const {
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (!used_[i] && tokens_[i].rfind("--", 0) == 0) throw Error(ErrorKind::bad_input, "unknown option " + tokens_[i]);
}

}  // namespace visage::cli

namespace {

const char* kUsage = R"(usage: visage <command> [options]

commands:
  analyse IMAGE...         find faces: boxes, landmarks, age, gender, identity (table or JSON)
  inspect MODEL            print a model's inputs, outputs and operators after optimisation
  bench runtime [options]  time the bundled models on CPU and CUDA (table + JSON)
  bench analyse [options]  face analysis latency per stage on a 720p frame (CPU, CUDA)
  bench landmarks XML      68-point accuracy (NME) against dlib-style labels

run `visage <command> --help` for a command's options.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  try {
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "runtime") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_runtime(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "analyse") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_analyse(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "landmarks") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_landmarks(args);
    }
    if (command == "analyse" || command == "analyze") {
      visage::cli::Args args(argc, argv, 2);
      return visage::cli::analyse_images(args);
    }
    if (command == "inspect") {
      visage::cli::Args args(argc, argv, 2);
      return visage::cli::inspect_model(args);
    }
    std::cerr << "visage: unknown command '" << command << "'\n" << kUsage;
    return 2;
  } catch (const visage::Error& e) {
    std::cerr << "visage: " << visage::to_string(e.kind()) << ": " << e.what() << "\n";
    return e.kind() == visage::ErrorKind::bad_input ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "visage: internal error: " << e.what() << "\n";
    return 1;
  }
}
