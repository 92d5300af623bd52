// Internal, for files compiled once per ISA only (KERNKIT_ISA_NS defined): containers whose
// instantiations carry this ISA's name, so no variant's out-of-line vector code is merged into
// another's by the linker (see parallel.hpp; tests/python/test_build.py checks the objects).
#pragma once
#include <memory>
#include <vector>

namespace kernkit::KERNKIT_ISA_NS {

template <class T>
struct IsaAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = IsaAllocator<U>;
  };
  IsaAllocator() = default;
  template <class U>
  IsaAllocator(const IsaAllocator<U>&) noexcept {}
};

template <class T>
using isa_vector = std::vector<T, IsaAllocator<T>>;

}  // namespace kernkit::KERNKIT_ISA_NS
