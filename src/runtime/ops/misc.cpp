#include "runtime/ops/families.hpp"

namespace visage::rt {

void register_misc_ops(OpTable& /*table*/) {}

}  // namespace visage::rt
