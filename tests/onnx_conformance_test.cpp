// ONNX's own operator test cases (Debian's libonnx-testdata) run through the
// public API, for every case whose operators the runtime claims.
//
// Each case is a model.onnx plus test_data_set_*/{input,output}_N.pb. A case is
// claimed when every operator in it is in op_table() (Constant is turned into
// an initializer by the loader, Upsample into Resize). Claimed cases must
// match ONNX's expected outputs (rtol 1e-3, atol 1e-5, as ONNX's backend
// tests) with optimize=false and optimize=true, unless they are listed in
// tests/onnx_conformance_skips.txt, in which case they must be rejected with
// Error{unsupported} (never a wrong answer). A per-operator table goes to
// stdout and to $VISAGE_CONFORMANCE_REPORT when set.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "runtime/kernel.hpp"
#include "runtime/loaders/onnx_tensor.hpp"
#include "visage/runtime.hpp"

namespace fs = std::filesystem;

namespace {

fs::path node_test_dir() {
  if (const char* dir = std::getenv("VISAGE_ONNX_NODE_TESTS")) return dir;
  return "/usr/include/onnx/backend/test/data/node";
}

std::map<std::string, std::string> read_skips() {
  std::map<std::string, std::string> skips;
  std::ifstream in(fs::path(VISAGE_SOURCE_DIR) / "tests" / "onnx_conformance_skips.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, reason;
    fields >> name;
    std::getline(fields, reason);
    reason.erase(0, reason.find_first_not_of(" \t"));
    if (!name.empty()) skips[name] = reason;
  }
  return skips;
}

// The files `prefix_0.pb`, `prefix_1.pb`, ... of a data set, in index order.
std::vector<fs::path> numbered_files(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int i = 0;; ++i) {
    fs::path file = dir / (prefix + "_" + std::to_string(i) + ".pb");
    if (!fs::exists(file)) break;
    files.push_back(file);
  }
  return files;
}

std::string shape_text(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

// Empty when `got` matches `expected`; otherwise what differs.
std::string compare(const at::Tensor& got, const at::Tensor& expected) {
  if (got.sizes() != expected.sizes())
    return "shape " + shape_text(got.sizes()) + ", expected " + shape_text(expected.sizes());
  if (!at::isFloatingType(expected.scalar_type())) {
    if (got.scalar_type() != expected.scalar_type())
      return std::string("dtype ") + c10::toString(got.scalar_type()) + ", expected " +
             c10::toString(expected.scalar_type());
    if (!at::equal(got.cpu(), expected)) return "integer values differ";
    return "";
  }
  if (!at::isFloatingType(got.scalar_type())) return std::string("dtype ") + c10::toString(got.scalar_type());
  at::Tensor g = got.cpu().to(at::kDouble);
  at::Tensor e = expected.to(at::kDouble);
  at::Tensor both_nan = at::isnan(g) & at::isnan(e);
  at::Tensor same_inf = at::isinf(e) & (g == e);
  at::Tensor close = (g - e).abs() <= 1e-5 + 1e-3 * e.abs();
  at::Tensor ok = both_nan | same_inf | close;
  if (ok.all().item<bool>()) return "";
  at::Tensor bad = at::logical_not(ok);
  int64_t count = bad.sum().item<int64_t>();
  at::Tensor first = at::nonzero(bad.flatten())[0][0];
  int64_t i = first.item<int64_t>();
  std::ostringstream s;
  s << count << " of " << e.numel() << " values differ, e.g. [" << i << "] " << g.flatten()[i].item<double>()
    << " vs expected " << e.flatten()[i].item<double>();
  return s.str();
}

enum class Outcome { passed, failed, unsupported };

struct RunResult {
  Outcome outcome = Outcome::passed;
  std::string detail;
};

// How a case is run: as written and optimised on the CPU, and optimised on
// CUDA (fp32) where a GPU is present, so every claimed operator's CUDA path is
// checked against the same expected outputs.
struct Mode {
  bool optimize;
  bool cuda;
  const char* label;
};

RunResult run_case(const fs::path& dir, const Mode& mode) {
  RunResult result;
  try {
    visage::RuntimeOptions options;
    options.optimize = mode.optimize;
    if (mode.cuda) options.device = visage::Device::cuda;
    auto model = visage::Model::load(dir / "model.onnx", options);
    visage::Session session(model);
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_directory() || entry.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
      std::vector<at::Tensor> inputs;
      for (const auto& file : numbered_files(entry.path(), "input"))
        inputs.push_back(visage::rt::read_onnx_tensor_file(file));
      auto expected_files = numbered_files(entry.path(), "output");
      std::vector<at::Tensor> outputs = session.run(inputs);
      if (outputs.size() != expected_files.size()) {
        result.outcome = Outcome::failed;
        result.detail = std::to_string(outputs.size()) + " outputs, expected " + std::to_string(expected_files.size());
        return result;
      }
      for (size_t i = 0; i < outputs.size(); ++i) {
        std::string difference = compare(outputs[i].cpu(), visage::rt::read_onnx_tensor_file(expected_files[i]));
        if (!difference.empty()) {
          result.outcome = Outcome::failed;
          result.detail = entry.path().filename().string() + " output " + std::to_string(i) + ": " + difference;
          return result;
        }
      }
    }
  } catch (const visage::Error& e) {
    result.outcome = e.kind() == visage::ErrorKind::unsupported ? Outcome::unsupported : Outcome::failed;
    result.detail = std::string(visage::to_string(e.kind())) + " error: " + e.what();
  } catch (const std::exception& e) {
    result.outcome = Outcome::failed;
    result.detail = std::string("non-visage exception: ") + e.what();
  }
  return result;
}

struct OpCounts {
  int cases = 0, passed = 0, failed = 0, skipped = 0;
};

}  // namespace

TEST(OnnxConformance, ClaimedOperatorsPassOnnxNodeTests) {
  const fs::path root = node_test_dir();
  if (!fs::is_directory(root))
    GTEST_SKIP() << "ONNX node test data not found at " << root << " (install Debian's libonnx-testdata)";
  const auto skips = read_skips();
  const visage::rt::OpTable& table = visage::rt::op_table();
  auto claimed = [&](const std::string& op) {
    if (op == "Constant") return true;  // the loader turns it into an initializer
    if (op == "Upsample") return table.find("Resize") != nullptr;
    return table.find(op) != nullptr;
  };

  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(root))
    if (fs::exists(entry.path() / "model.onnx")) cases.push_back(entry.path());
  std::sort(cases.begin(), cases.end());

  std::map<std::string, OpCounts> per_op;
  int unclaimed = 0, passed = 0, failed = 0, skipped = 0;
  std::set<std::string> seen_skips;
  std::vector<std::string> failures;
  for (const auto& dir : cases) {
    const std::string name = dir.filename().string();
    std::vector<std::string> ops;
    try {
      ops = visage::rt::onnx_operator_types(dir / "model.onnx");
    } catch (const std::exception& e) {
      ++unclaimed;  // not a model we can read at all (e.g. a data type ATen lacks)
      continue;
    }
    std::set<std::string> distinct(ops.begin(), ops.end());
    if (distinct.empty() || !std::all_of(distinct.begin(), distinct.end(), claimed)) {
      ++unclaimed;
      continue;
    }
    auto skip = skips.find(name);
    std::string verdict;  // empty: passed
    bool was_skipped = false;
    std::vector<Mode> modes = {{false, false, " [cpu, optimize=false]"}, {true, false, " [cpu, optimize=true]"}};
    if (visage::cuda_available()) modes.push_back({true, true, " [cuda fp32, optimize=true]"});
    for (const Mode& run_mode : modes) {
      RunResult r = run_case(dir, run_mode);
      std::string mode = run_mode.label;
      if (skip != skips.end()) {
        seen_skips.insert(name);
        if (r.outcome == Outcome::unsupported) {
          was_skipped = true;
          continue;
        }
        verdict = "listed in onnx_conformance_skips.txt (" + skip->second + ") but " +
                  (r.outcome == Outcome::passed ? std::string("it passes: remove it from the list")
                                                : "did not fail with Error{unsupported}: " + r.detail) +
                  mode;
        was_skipped = false;
        break;
      }
      if (r.outcome != Outcome::passed) {
        verdict = r.detail + mode;
        break;
      }
    }
    for (const auto& op : distinct) {
      OpCounts& counts = per_op[op];
      ++counts.cases;
      if (!verdict.empty())
        ++counts.failed;
      else if (was_skipped)
        ++counts.skipped;
      else
        ++counts.passed;
    }
    if (!verdict.empty()) {
      ++failed;
      failures.push_back(name + ": " + verdict);
    } else if (was_skipped) {
      ++skipped;
    } else {
      ++passed;
    }
  }

  std::ostringstream report;
  report << "ONNX node conformance (" << root.string() << ")\n";
  report << std::left << std::setw(28) << "operator" << std::right << std::setw(7) << "cases" << std::setw(8)
         << "passed" << std::setw(8) << "failed" << std::setw(9) << "skipped"
         << "\n";
  for (const auto& [op, counts] : per_op)
    report << std::left << std::setw(28) << op << std::right << std::setw(7) << counts.cases << std::setw(8)
           << counts.passed << std::setw(8) << counts.failed << std::setw(9) << counts.skipped << "\n";
  report << "claimed cases: " << passed + failed + skipped << " (passed " << passed << ", failed " << failed
         << ", skipped " << skipped << "); cases with unclaimed operators: " << unclaimed << "\n";
  for (const auto& failure : failures) report << "FAILED " << failure << "\n";
  std::cout << report.str();
  if (const char* path = std::getenv("VISAGE_CONFORMANCE_REPORT")) {
    std::ofstream out(path);
    out << report.str();
  }

  for (const auto& failure : failures) ADD_FAILURE() << failure;
  for (const auto& [name, reason] : skips)
    if (!seen_skips.count(name) && fs::exists(root / name))
      ADD_FAILURE()
          << name
          << " is in onnx_conformance_skips.txt but is no longer a claimed case (one of its operators has no kernel)";
  EXPECT_GT(passed, 0) << "no claimed case passed: is the operator table empty?";
}
