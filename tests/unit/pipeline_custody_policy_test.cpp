// Custody's choices (core/pipeline/custody_policy.hpp): memory or spool, and what a full spool does.
#include <catch2/catch.hpp>

#include "core/pipeline/custody_policy.hpp"
#include "core/pipeline/spool_record.hpp"

using namespace aforo::core;

TEST_CASE("custody: durability disk spools the whole request", "[pipeline][custody]") {
  const auto s = split_custody(false, 10'000, 7);
  CHECK(s.to_memory == 0);
  CHECK(s.to_spool == 7);
}

TEST_CASE("custody: durability memory keeps what fits and spills the rest", "[pipeline][custody]") {
  auto s = split_custody(true, 10, 7);
  CHECK(s.to_memory == 7);
  CHECK(s.to_spool == 0);
  s = split_custody(true, 3, 7);
  CHECK(s.to_memory == 3);
  CHECK(s.to_spool == 4);
  s = split_custody(true, 0, 7);
  CHECK(s.to_memory == 0);
  CHECK(s.to_spool == 7);
  CHECK(split_custody(true, 5, 0).to_spool == 0);
}

TEST_CASE("custody: a record that fits is appended, a full spool rejects or drops the oldest", "[pipeline][custody]") {
  const std::uint64_t max = 1000;
  const std::uint64_t payload = 100;  // + the header
  CHECK(admit_to_spool(0, payload, max, when_full_policy::reject) == spool_admission::append);
  CHECK(admit_to_spool(max - payload - spool_header_bytes, payload, max, when_full_policy::reject) ==
        spool_admission::append);  // exactly full
  CHECK(admit_to_spool(max - payload - spool_header_bytes + 1, payload, max, when_full_policy::reject) ==
        spool_admission::reject_full);
  CHECK(admit_to_spool(max - payload, payload, max, when_full_policy::drop_oldest) == spool_admission::drop_oldest);
}

TEST_CASE("custody: a record no spool could hold is too large whatever when_full says", "[pipeline][custody]") {
  for (auto wf : {when_full_policy::reject, when_full_policy::drop_oldest}) {
    CHECK(admit_to_spool(0, 1000 - spool_header_bytes + 1, 1000, wf) == spool_admission::too_large);
    CHECK(admit_to_spool(0, std::uint64_t{spool_max_payload} + 1, std::uint64_t{1} << 40, wf) ==
          spool_admission::too_large);
  }
}
