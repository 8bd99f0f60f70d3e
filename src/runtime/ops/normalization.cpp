#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_normalization_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
