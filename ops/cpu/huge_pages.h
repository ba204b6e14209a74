// advise_huge_pages: ask Linux to back a large, not yet written output with 2 MB pages.
//
// The training forward of RoI pooling at 2000 RoIs writes a 200 MB output and a 200 MB argmax
// that torch has just allocated with mmap. With 4 KB pages the first write of each page is a
// page fault: ~100 000 of them per call, a large part of the kernel's time next to the
// stores themselves. This machine's transparent huge pages are "madvise" (only where asked
// for), so the kernel asks for them before it writes; torch's own THP_MEM_ALLOC_ENABLE does
// the same for every allocation. Advice only: a failure changes nothing but the speed.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace rcnn_cli::cpu {

inline void advise_huge_pages(void* ptr, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  if (bytes < 4 * kHuge) return;
  // Only the whole 2 MB pages inside the buffer: madvise needs an aligned start, and the
  // pages around the buffer belong to someone else.
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(ptr) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(ptr) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)ptr;
  (void)bytes;
#endif
}

}  // namespace rcnn_cli::cpu
