// SPDX-License-Identifier: MIT
// libFuzzer target: the whole command line. NUL-separated arguments go through cli::run() with
// Redis pointed at a closed port, so every path ends in an exit code, never a crash.
#include "cli/app.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Port 1 on loopback refuses at once; nothing reaches a real server.
  setenv("RLOCK_URL", "redis://127.0.0.1:1", 1);
  unsetenv("REDIS_URL");
  unsetenv("RLOCK_TOKEN");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args{"rlock"};
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current += static_cast<char>(data[i]);
    }
  }
  args.push_back(current);
  // exec would start programs and acquire would fork a keeper: keep to parsing for those.
  for (const auto& arg : args) {
    if (arg == "exec" || arg == "acquire" || arg == "--password-file" || arg == "--token-file" ||
        arg.starts_with("--password-file=") || arg.starts_with("--token-file=")) {
      args.push_back("--help");
      break;
    }
  }
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Keep the fuzzer's output readable: the CLI's messages go to a closed stderr.
  int saved_err = dup(2);
  int saved_out = dup(1);
  int null_fd = open("/dev/null", O_WRONLY);
  dup2(null_fd, 2);
  dup2(null_fd, 1);
  int code = rlock::cli::run(static_cast<int>(argv.size() - 1), argv.data());
  dup2(saved_err, 2);
  dup2(saved_out, 1);
  close(saved_err);
  close(saved_out);
  close(null_fd);
  if (code < 0 || code > 255) __builtin_trap();
  return 0;
}
