#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_pool_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
