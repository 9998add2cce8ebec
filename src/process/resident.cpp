// SPDX-License-Identifier: MIT
#include "process/resident.hpp"

#include <cstdint>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

namespace rlock::process {
namespace {

struct Shed {
  std::uintptr_t page = 4096;
  unsigned long bytes = 0;
  bool main_seen = false;
};

int shed_object(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto& shed = *static_cast<Shed*>(data);
  // The first object listed is the executable itself; shared libraries (in a dynamically
  // linked build) have their own users to account them to.
  if (shed.main_seen) return 1;
  shed.main_seen = true;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || (segment.p_flags & PF_W) != 0) continue;
    // Whole pages only: a read-only segment's first or last page may be shared with a
    // writable neighbour's (relro, .data), whose content MADV_DONTNEED would throw away.
    const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    const std::uintptr_t end = start + segment.p_memsz;
    const std::uintptr_t first = (start + shed.page - 1) & ~(shed.page - 1);
    const std::uintptr_t last = end & ~(shed.page - 1);
    if (last <= first) continue;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): the ELF headers give addresses as integers
    if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) == 0) shed.bytes += last - first;
  }
  return 1;
}

} // namespace

unsigned long shed_startup_pages() noexcept {
  Shed shed;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) shed.page = static_cast<std::uintptr_t>(page);
  ::dl_iterate_phdr(shed_object, &shed);
  return shed.bytes;
}

} // namespace rlock::process
