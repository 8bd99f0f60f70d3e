// Loading the ESRGAN packages for the enhancers.
#pragma once

#include <memory>

#include "visage/enhance.hpp"

namespace visage::enhance {

// Loads the model.json of `model` from model_package_dir(). Throws
// Error{model} naming the missing package or file, Error{resource} when CUDA
// is asked for without a device.
std::shared_ptr<const Model> load_enhancer_model(EnhancerModel model, const RuntimeOptions& runtime);

}  // namespace visage::enhance
