// Lease reports counted once per report_id, however often a failed check sends them again.
#include <catch2/catch.hpp>

#include <string>

#include "core/entitlements/lease_reports.hpp"

using namespace aforo::core::entitlements;

namespace {
check_request report(std::string_view id, std::int64_t leased, std::int64_t unused, bool resent = false) {
  check_request r;
  r.customer_id = "c";
  r.report_id = id;
  r.leased = leased;
  r.lease_unused = unused;
  r.report_resent = resent;
  return r;
}
}  // namespace

TEST_CASE("lease reports: a report sent again counts only what it adds", "[entitlements][lease]") {
  lease_reports reports;
  auto first = report("w:1", 5, 3);
  CHECK(reports.apply(first) == lease_reports::outcome::first);
  CHECK(first.leased == 5);
  CHECK(first.lease_unused == 3);

  // The answer was lost: the plugin sends the same report, grown by what the key gathered since.
  auto again = report("w:1", 7, 3, true);
  CHECK(reports.apply(again) == lease_reports::outcome::repeated);
  CHECK(again.leased == 2);
  CHECK(again.lease_unused == 0);

  auto same = report("w:1", 7, 3, true);
  reports.apply(same);
  CHECK(same.leased == 0);
  CHECK(same.lease_unused == 0);

  // Another id is its own report; a check without one keeps its counts.
  auto other = report("w:2", 1, 1);
  reports.apply(other);
  CHECK(other.leased == 1);
  CHECK(other.lease_unused == 1);
  auto none = report("", 4, 4);
  CHECK(reports.apply(none) == lease_reports::outcome::none);
  CHECK(none.leased == 4);
  CHECK(none.lease_unused == 4);
}

TEST_CASE("lease reports: a renewal's own request counts once whichever way its lost answer went",
          "[entitlements][lease]") {
  // Allowed: the decision consumed the renewal's quantity; the plugin re-sends leased + 1.
  lease_reports allowed;
  auto renewal = report("w:9", 10, 0);
  renewal.renewal = true;
  allowed.apply(renewal);
  allowed.decided("w:9", 1, 0);
  auto resent = report("w:9", 11, 0, true);
  allowed.apply(resent);
  CHECK(resent.leased == 0);

  // Denied: nothing consumed for it, so the re-sent request counts now.
  lease_reports denied;
  auto r2 = report("w:9", 10, 0);
  denied.apply(r2);
  auto resent2 = report("w:9", 11, 0, true);
  denied.apply(resent2);
  CHECK(resent2.leased == 1);
}

TEST_CASE("lease reports: an unknown re-sent report never gives units back twice, and the ledger is bounded",
          "[entitlements][lease]") {
  lease_reports reports(2);
  auto a = report("a", 1, 1);
  auto b = report("b", 1, 1);
  auto c = report("c", 1, 1);
  reports.apply(a);
  reports.apply(b);
  reports.apply(c);  // forgets "a"
  CHECK(reports.size() == 2);
  CHECK(reports.forgotten() == 1);

  // "a" again: it may have been applied, so its unused units stay counted as used (under, never over).
  auto a2 = report("a", 1, 1, true);
  CHECK(reports.apply(a2) == lease_reports::outcome::unknown_resend);
  CHECK(a2.leased == 1);
  CHECK(a2.lease_unused == 0);
  // ...and recorded whole: a third sending adds nothing.
  auto a3 = report("a", 1, 1, true);
  CHECK(reports.apply(a3) == lease_reports::outcome::repeated);
  CHECK(a3.leased == 0);
  CHECK(a3.lease_unused == 0);

  // A first sending of an unknown id is taken as it is.
  auto d = report("d", 2, 2);
  CHECK(reports.apply(d) == lease_reports::outcome::first);
  CHECK(d.lease_unused == 2);
}

TEST_CASE("lease reports: an id sent again gives back the lease its unanswered sending granted",
          "[entitlements][lease]") {
  lease_reports reports;
  // A check with nothing to report is not remembered, unless its answer grants a lease.
  auto quiet = report("w:5", 0, 0);
  CHECK(reports.apply(quiet) == lease_reports::outcome::first);
  CHECK(reports.size() == 0);
  reports.decided("w:5", 0, 0);
  CHECK(reports.size() == 0);

  auto check = report("w:6", 0, 0);
  reports.apply(check);
  reports.decided("w:6", 0, 3);  // the answer carries a lease of 3: it never arrives
  CHECK(reports.size() == 1);
  auto again = report("w:6", 2, 0, true);  // the next check sends the id again
  CHECK(reports.apply(again) == lease_reports::outcome::repeated);
  CHECK(again.leased == 2);
  CHECK(again.lease_unused == 3);  // the lost lease's units go back
  reports.decided("w:6", 0, 4);    // and this answer is lost too
  auto third = report("w:6", 2, 1, true);
  reports.apply(third);
  CHECK(third.leased == 0);
  CHECK(third.lease_unused == 1 + 4);
  auto fourth = report("w:6", 2, 1, true);  // answered, nothing granted: nothing more
  reports.apply(fourth);
  CHECK(fourth.lease_unused == 0);
}
