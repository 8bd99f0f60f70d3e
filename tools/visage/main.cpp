// visage: the command-line front end. It uses only the public API.
#include <malloc.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>
#include <thread>

#include "cli.hpp"
#include "visage/error.hpp"

namespace visage::cli {

namespace {

// "--name" or "-s"; not a negative number.
bool is_option(const std::string& token) {
  return token.size() > 1 && token[0] == '-' && !std::isdigit(static_cast<unsigned char>(token[1])) && token[1] != '.';
}

}  // namespace

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) tokens_.emplace_back(argv[i]);
  used_.assign(tokens_.size(), false);
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (!is_option(tokens_[i])) positionals_.push_back(tokens_[i]);
}

std::vector<std::string> Args::values(const std::string& name, const std::string& alias) {
  std::vector<std::string> out;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i] != name && (alias.empty() || tokens_[i] != alias)) continue;
    if (i + 1 >= tokens_.size()) throw Error(ErrorKind::bad_input, "option " + tokens_[i] + " needs a value");
    used_[i] = used_[i + 1] = true;
    out.push_back(tokens_[i + 1]);
    auto at = std::find(positionals_.begin(), positionals_.end(), tokens_[i + 1]);
    if (at != positionals_.end()) positionals_.erase(at);
    ++i;
  }
  return out;
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
    if (!used_[i] && is_option(tokens_[i])) throw Error(ErrorKind::bad_input, "unknown option " + tokens_[i]);
}

}  // namespace visage::cli

namespace {

const char* kUsage = R"(usage: visage <command> [options]

commands:
  swap -s SRC -t TGT -o OUT  put the source's face onto the target's faces (images, videos)
  stream -s SRC -i IN -o OUT live swap: camera, URL or file to a file, /dev/videoN or udp://
  analyse IMAGE...         find faces: boxes, landmarks, age, gender, identity (table or JSON)
  enhance IMAGE... -o OUT  sharper faces (ESRGAN face enhancer) and/or the whole image x2/x4
  inspect MODEL            print a model's inputs, outputs and operators after optimisation
  bench runtime [options]  time the bundled models on CPU and CUDA (table + JSON)
  bench analyse [options]  face analysis latency per stage on a 720p frame (CPU, CUDA)
  bench landmarks XML      68-point accuracy (NME) against dlib-style labels
  bench enhance [options]  face enhancer ms per face, frame enhancer ms per megapixel (CPU, CUDA)
  bench swap [options]     one face swap in a 1080p frame, per stage (CPU, CUDA)
  bench swap-quality --sources A,.. --targets X,..  identity/landmark figures vs the plain paste, contact sheet
  bench swap-cases --case 'LABEL|SOURCE|TARGET[|ZOOM]'...  labelled contact sheet of hard cases (occluders, eyes, grey)
  bench video --video CLIP --source IMAGE  the whole video pipeline in fps, per stage, memory; jitter
  bench mesh-canonical IMAGE...  the mean symmetric frontal mesh (src/swap/canonical_mesh.cpp)

run `visage <command> --help` for a command's options.
)";

}  // namespace

int main(int argc, char** argv) {
  // Frames and the swap's work buffers are large, short-lived allocations.
  // By default glibc maps each from the kernel and unmaps it at free, so every
  // frame page-faults its buffers in again (measured: half the CPU time of a
  // swap), and every worker thread gets an arena of its own. Keep freed
  // blocks in a few shared heaps instead.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency() / 2)));
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
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "mesh-canonical") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_mesh_canonical(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "enhance") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_enhance(args);
    }
    if (command == "enhance") {
      visage::cli::Args args(argc, argv, 2);
      return visage::cli::enhance_images(args);
    }
    if (command == "analyse" || command == "analyze") {
      visage::cli::Args args(argc, argv, 2);
      return visage::cli::analyse_images(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "swap") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_swap(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "swap-quality") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_swap_quality(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "swap-cases") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_swap_cases(args);
    }
    if (command == "swap") {
      visage::cli::Args args(argc, argv, 2);
      return visage::cli::swap_images(args);
    }
    if (command == "bench" && argc >= 3 && std::string(argv[2]) == "video") {
      visage::cli::Args args(argc, argv, 3);
      return visage::cli::bench_video(args);
    }
    if (command == "stream") {
      visage::cli::Args args(argc, argv, 2);
      return visage::cli::stream_video(args);
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
