#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_activation_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
