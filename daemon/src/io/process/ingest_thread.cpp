// See ingest_thread.hpp.
#include "io/process/ingest_thread.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "util/log.hpp"

namespace aforo::io {

ingest_thread::ingest_thread(int nice) : pool_(std::make_unique<boost::asio::thread_pool>(1)) {
  if (nice == 0) return;
  boost::asio::post(*pool_, [nice] {
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    if (::setpriority(PRIO_PROCESS, tid, nice) != 0) {
      util::log::warn(std::string("ingest parse thread: cannot set nice ") + std::to_string(nice) + ": " +
                      std::strerror(errno) + "; it runs at the daemon's priority");
    }
  });
}

ingest_thread::~ingest_thread() {
  pool_->join();  // runs what was posted, then the thread ends
}

void ingest_thread::post(std::function<void()> job) {
  pending_.fetch_add(1, std::memory_order_relaxed);
  boost::asio::post(*pool_, [this, job = std::move(job)] {
    job();
    pending_.fetch_sub(1, std::memory_order_relaxed);
  });
}

}  // namespace aforo::io
