#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_matmul_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
