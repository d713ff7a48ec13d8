// aforo-fake-aforo-api: the fake of Aforo's decision endpoints (fake_aforo_api.hpp) as a program, for
// bench/check/aforo_api.sh and local runs. Every customer gets ALLOW / NONE.
//   aforo-fake-aforo-api [--listen 127.0.0.1:PORT] [--delay-ms N]
// Prints "listening on http://HOST:PORT"; runs until SIGTERM or SIGINT. GET /stats counts the calls.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fake_aforo_api.hpp"

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  int delay_ms = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--listen" && i + 1 < argc)
      listen = argv[++i];
    else if (a == "--delay-ms" && i + 1 < argc)
      delay_ms = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: aforo-fake-aforo-api [--listen HOST:PORT] [--delay-ms N]\n");
      return 64;
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the server thread starts: only sigwait sees them
  aforo::fake::fake_aforo_api api(true, listen);
  api.set_delay(std::chrono::milliseconds(delay_ms), std::chrono::milliseconds(delay_ms));
  std::printf("listening on %s\n", api.url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
