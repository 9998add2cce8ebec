// SPDX-License-Identifier: MIT
// What a long-lived rlock (a supervisor, a keeper) keeps resident once its start-up is over.
#pragma once

namespace rlock::process {

// Unmaps from this process the pages of its own executable's read-only segments (code and
// constant data) that it has touched so far, without changing what they hold: the pages stay
// in the page cache, shared with every other rlock, and the few a later renewal runs are
// faulted back in from there when used again. A supervisor touches most of its start-up code
// once (option parsing, the URL, the first connection, the job's spawn) and, with the kernel
// mapping 16 pages around each fault, would keep about 2.7 MiB of it mapped for the job's
// whole run. Writable segments are never touched. Returns the bytes advised away (0 when
// nothing could be: not an error, only a larger RSS).
unsigned long shed_startup_pages() noexcept;

} // namespace rlock::process
